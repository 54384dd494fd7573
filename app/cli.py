"""`app` console script: a command group (migrate, relay, serve, worker, dlq redrive, dlq settle)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer

from app import contract

if TYPE_CHECKING:
    from collections.abc import Callable

    from app.settings import Settings

cli = typer.Typer(help="The bundled API's commands.", no_args_is_help=True, add_completion=False)


@cli.command()
def migrate() -> None:
    """Apply pending SQL migrations (safe to run twice and from two tasks at once)."""
    from app.data import migrate as run  # noqa: PLC0415
    from app.observability import configure_logging  # noqa: PLC0415
    from app.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    configure_logging(settings.log_level)
    applied = run(settings)
    typer.echo(f"migrations applied: {len(applied)}")


@cli.command()
def relay() -> None:
    """Publish outbox rows to the SNS events topic until SIGTERM/SIGINT."""
    from app.outbox import Relay  # noqa: PLC0415

    _run_until_stopped("relay", Relay)


@cli.command()
def serve(
    bind: Annotated[str, typer.Option(help="host:port")] = f"0.0.0.0:{contract.API_PORT}",
) -> None:
    """Run the API under gunicorn (the container's default command)."""
    args = [*contract.API_COMMAND[:-1], "--bind", bind, contract.API_COMMAND[-1]]
    os.execvp(args[0], args)  # noqa: S606


@cli.command()
def worker() -> None:
    """Consume the order queue until SIGTERM/SIGINT, then drain and exit within the stop timeout."""
    from app.worker import Worker  # noqa: PLC0415

    _run_until_stopped("worker", Worker)


def _run_until_stopped(command: str, make: Callable[[Settings, threading.Event], Any]) -> None:
    """Build the long-running process from the settings and run it until SIGTERM/SIGINT; a setting it cannot
    start without (its ValueError) is a one-line error and exit status 2, not a traceback."""
    from app.observability import configure_logging, configure_tracing  # noqa: PLC0415

    settings = _settings_or_exit()
    configure_logging(settings.log_level)
    configure_tracing(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        process = make(settings, stop)
    except ValueError as exc:
        typer.echo(f"app {command}: {exc}", err=True)
        raise typer.Exit(2) from None
    process.run()
    _leave_lingering_work(command, EXIT_GRACE_SECONDS)


# After its drain a process has this long for its threads to end before it leaves them (see below).
EXIT_GRACE_SECONDS = 1.0


def _leave_lingering_work(command: str, grace: float) -> None:
    """Exit now if a thread outlasts the drain by more than `grace` seconds.

    The interpreter's exit joins every non-daemon thread, the thread pools' too: one still waiting on a slow call
    after the drain would keep the process past the task's stop timeout, and ECS would SIGKILL it. The drain has
    already put what that thread held back on the queue (visibility 0), and its open transaction rolls back when
    the process's connections close, so the process leaves it (logs and traces flushed first)."""
    from app.observability import flush_traces  # noqa: PLC0415

    deadline = time.monotonic() + grace
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in others:
        thread.join(max(0.0, deadline - time.monotonic()))
    lingering = sorted(t.name for t in others if t.is_alive())
    if not lingering:
        return
    log = structlog.get_logger("app.cli")
    log.warning("exiting_with_work_in_flight", process=command, threads=lingering)
    flush_traces()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


dlq = typer.Typer(help="The dead-letter queue.", no_args_is_help=True)
cli.add_typer(dlq, name="dlq")


@dlq.command()
def redrive(
    rate: Annotated[float, typer.Option(min=0.1, max=3000, help="Messages per second at most.")] = 10.0,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only messages of this event type (e.g. order.placed).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Move at most this many messages.")] = None,
) -> None:
    """Move dead-lettered messages back to the source queue once a fix is out (rate-limited, with progress)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    from app import aws  # noqa: PLC0415
    from app.dlq import RedriveError, approximate_depth, dead_letter_queue_url  # noqa: PLC0415
    from app.dlq import redrive as run  # noqa: PLC0415
    from app.observability import configure_logging  # noqa: PLC0415

    settings = _settings_or_exit()
    configure_logging("WARNING")
    try:
        depth = approximate_depth(
            aws.client("sqs", settings), dead_letter_queue_url(settings, aws.client("sqs", settings))
        )
        with Progress(
            TextColumn("redrive"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}")
        ) as bar:
            task = bar.add_task("", total=min(depth, limit) if limit else depth)
            report = run(
                settings,
                rate=rate,
                event_type=event_type,
                limit=limit,
                on_progress=lambda r: bar.update(task, completed=r.moved, description=f"skipped {r.skipped}"),
            )
    except RedriveError as exc:
        typer.echo(f"app dlq redrive: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"moved {report.moved} skipped {report.skipped} settled {report.settled} failed {report.failed}"
        f" by type {report.by_type}"
    )
    if report.failed:
        raise typer.Exit(1)


@dlq.command()
def settle() -> None:
    """Compensate the order of every order event in the DLQ (stock released, FAILED) and delete it."""
    from app.dlq import RedriveError  # noqa: PLC0415
    from app.dlq import settle as run  # noqa: PLC0415
    from app.observability import configure_logging  # noqa: PLC0415

    settings = _settings_or_exit()
    configure_logging("WARNING")
    try:
        report = run(settings)
    except RedriveError as exc:
        typer.echo(f"app dlq settle: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"compensated {report.compensated} already settled {report.settled} left {report.left}")


def _settings_or_exit() -> Settings:
    from pydantic import ValidationError  # noqa: PLC0415

    from app.settings import load_settings  # noqa: PLC0415

    try:
        return load_settings()
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"invalid setting {'.'.join(str(p) for p in error['loc'])}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
