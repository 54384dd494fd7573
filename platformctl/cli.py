"""`platformctl`: the platform's command line (offline plan, policy check, stack-file schema)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from platformctl.plan import Plan, PlanUsageError, read_project, read_stack_config, run_plan
from platformctl.policy import (
    PACK_DIR,
    PolicyError,
    PolicyPackProcess,
    PolicyReport,
    check_plan,
    load_pack_config,
    resolve_config,
    rules_markdown,
)
from stack_config.errors import StackConfigError
from stack_config.json_schema import stack_file_schema

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
PROJECT_DIR = Path(__file__).resolve().parent.parent

cli = typer.Typer(
    name="platformctl",
    help="Plan, check and run the platform without a cloud account.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Wide enough for type tokens when piped; a terminal keeps its own width.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ProjectDir = Annotated[
    Path,
    typer.Option(
        "--project-dir",
        help="The Pulumi project to plan (default: this repository's).",
        exists=True,
        file_okay=False,
        resolve_path=True,
    ),
]


PolicyPack = Annotated[
    Path,
    typer.Option(
        "--policy-pack",
        help="The CrossGuard policy pack to enforce (default: this repository's policy/).",
        exists=True,
        file_okay=False,
        resolve_path=True,
    ),
]
PolicyConfig = Annotated[
    Path | None,
    typer.Option(
        "--policy-config",
        help="The pack config (as `pulumi preview --policy-pack-config` takes); default: PACK/config/STACK.json.",
        exists=True,
        dir_okay=False,
    ),
]


@cli.command()
def plan(  # noqa: PLR0917 - typer options
    stack: Annotated[str, typer.Argument(help="The stack to plan: the STACK of Pulumi.STACK.yaml.")],
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the whole plan as JSON to this file.", dir_okay=False)
    ] = None,
    project_dir: ProjectDir = PROJECT_DIR,
    tree: Annotated[bool, typer.Option(help="Print the resource tree.")] = True,
    policy: Annotated[
        bool, typer.Option(help="Check the plan against the policy pack (exit 1 on a mandatory violation).")
    ] = True,
    policy_pack: PolicyPack = PACK_DIR,
    policy_config: PolicyConfig = None,
) -> None:
    """Run the real program for STACK under Pulumi's mock runtime and show what it would create."""
    result = _run_plan("plan", project_dir, stack)
    report = _check_policy(result, project_dir, policy_pack, policy_config) if policy else None
    if json_file is not None:
        _write_json(json_file, result, report)
    if tree:
        _print_tree(result)
    _print_counts(result)
    if json_file is not None:
        out.print(f"plan written to {json_file}", markup=False)
    if report is not None:
        _print_violations(report)
        if report.mandatory:
            raise typer.Exit(EXIT_FAILED)


@cli.command(name="policy")
def policy_command(  # noqa: PLR0917 - typer options
    stack: Annotated[
        str | None, typer.Argument(help="The stack to check: the STACK of Pulumi.STACK.yaml.", show_default=False)
    ] = None,
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="Write the plan as JSON with its `violations` to this file.", dir_okay=False),
    ] = None,
    project_dir: ProjectDir = PROJECT_DIR,
    policy_pack: PolicyPack = PACK_DIR,
    policy_config: PolicyConfig = None,
    rules_markdown_: Annotated[
        bool, typer.Option("--rules-markdown", help="Print the pack's rule table (README's) and exit.")
    ] = False,
) -> None:
    """Check STACK's offline plan against the CrossGuard pack, as `pulumi preview --policy-pack` would."""
    if rules_markdown_:
        out.print(_rules_table(policy_pack), end="", markup=False)
        return
    if stack is None:
        err.print("platformctl policy: give a STACK (or --rules-markdown)", markup=False)
        raise typer.Exit(EXIT_INVALID)
    result = _run_plan("policy", project_dir, stack)
    report = _check_policy(result, project_dir, policy_pack, policy_config)
    if json_file is not None:
        _write_json(json_file, result, report)
        out.print(f"plan and violations written to {json_file}", markup=False)
    _print_violations(report)
    if report.mandatory:
        raise typer.Exit(EXIT_FAILED)


def _run_plan(command: str, project_dir: Path, stack: str) -> Plan:
    try:
        return run_plan(project_dir, stack)
    except PlanUsageError as error:
        err.print(f"platformctl {command}: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except StackConfigError as error:
        err.print(f"Pulumi.{stack}.yaml: invalid stack config", markup=False)
        for problem in error.problems:
            err.print(f"  {problem}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except Exception as error:  # noqa: BLE001 - a program bug is reported, not dumped as a traceback
        err.print(f"platformctl {command}: the program failed: {type(error).__name__}: {error}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None


def _check_policy(result: Plan, project_dir: Path, pack_dir: Path, config_file: Path | None) -> PolicyReport:
    config_file = config_file or pack_dir / "config" / f"{result.stack}.json"
    try:
        stack_config, _ = read_stack_config(project_dir.resolve(), read_project(project_dir.resolve()), result.stack)
        return check_plan(
            result, pack_dir=pack_dir, pack_config=load_pack_config(config_file), stack_config=stack_config
        )
    except PolicyError as error:
        err.print(f"platformctl policy: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


def _write_json(json_file: Path, result: Plan, report: PolicyReport | None) -> None:
    document = result.to_json()
    if report is not None:
        document["violations"] = [violation.to_json() for violation in report.violations]
    json_file.write_text(json.dumps(document, indent=2) + "\n")


def _print_violations(report: PolicyReport) -> None:
    """Violations grouped by severity, then rule, each rule with its remediation."""
    remediation = {rule.name: rule.remediation for rule in report.rules}
    current_severity, current_rule = "", ""
    for violation in report.violations:
        if violation.severity != current_severity:
            current_severity, current_rule = violation.severity, ""
            out.print(f"{current_severity.upper()}", markup=False)
        if violation.rule != current_rule:
            current_rule = violation.rule
            level = report.levels.get(violation.rule, violation.enforcement_level)
            out.print(f"  {violation.rule} [{level}]", markup=False)
            out.print(f"    fix: {remediation.get(violation.rule, '')}", markup=False)
        out.print(f"    - {violation.message}", markup=False)
    out.print(report.summary(), markup=False)


def _rules_table(pack_dir: Path) -> str:
    """The pack's rules as a Markdown table, with the enforcement each stack's pack config gives them."""
    try:
        with PolicyPackProcess(pack_dir) as pack:
            rules = pack.rules()
        levels = {
            path.stem: {name: level for name, (level, _) in resolve_config(rules, load_pack_config(path)).items()}
            for path in sorted((pack_dir / "config").glob("*.json"))
        }
    except PolicyError as error:
        err.print(f"platformctl policy: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    return rules_markdown(rules, levels)


@cli.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Write the JSON Schema of a stack file (Pulumi.STACK.yaml), for editors and other tools."""
    text = json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        out.print(text, end="", markup=False)
    else:
        output.write_text(text)


def _print_tree(result: Plan) -> None:
    children: dict[str | None, list[str]] = {}
    for resource in result.resources:
        children.setdefault(resource.parent, []).append(resource.urn)
    by_urn = {resource.urn: resource for resource in result.resources}

    def label(urn: str) -> str:
        resource = by_urn[urn]
        return f"{resource.name} ({resource.type})"

    def grow(node: Tree, urn: str) -> None:  # resources arrive parents first, siblings by name
        for child in children.get(urn, []):
            grow(node.add(label(child), highlight=False), child)

    for root in children.get(None, []):
        top = Tree(label(root), highlight=False)
        grow(top, root)
        out.print(top, markup=False)


def _print_counts(result: Plan) -> None:
    counts = Counter(resource.type for resource in result.custom_resources())
    table = Table(title=f"{result.project}/{result.stack}: resources by type", title_justify="left")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_token, count in sorted(counts.items()):
        table.add_row(type_token, str(count))
    out.print(table)
    out.print(f"plan: stack={result.stack} resources={sum(counts.values())} outputs={len(result.outputs)}")


local_cli = typer.Typer(help="The bundled app on this machine (moto, PostgreSQL, Redis).", no_args_is_help=True)
cli.add_typer(local_cli, name="local")


@local_cli.command("up")
def local_up(
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="The API's port.")] = 8080,
    moto_port: Annotated[int, typer.Option(min=1, max=65535, help="moto's server port.")] = 5055,
    notifier_port: Annotated[int, typer.Option(min=1, max=65535, help="The notification stub's port.")] = 8025,
    db_name: Annotated[str, typer.Option(help="The local PostgreSQL database (created if missing).")] = "app",
) -> None:
    """Start moto, the queues, migrations, a seeded catalog, the API, relay, worker and stub; Ctrl-C stops all."""
    from platformctl.local import LocalConfig, LocalError, LocalRuntime, run_until_signalled  # noqa: PLC0415

    config = LocalConfig(api_port=api_port, moto_port=moto_port, notifier_port=notifier_port, db_name=db_name)
    try:
        code = run_until_signalled(LocalRuntime(config, echo=lambda line: out.print(line, markup=False)))
    except LocalError as error:
        err.print(f"platformctl local up: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    raise typer.Exit(code)


@local_cli.command("status")
def local_status() -> None:
    """What `local up` runs, and the queue depths."""
    from platformctl.local import pid_alive, queue_depths, read_state  # noqa: PLC0415

    state = read_state()
    if state is None:
        out.print("local runtime: not running", markup=False)
        raise typer.Exit(EXIT_FAILED)
    table = Table(title="local runtime", title_justify="left")
    table.add_column("process")
    table.add_column("pid", justify="right")
    table.add_column("state")
    for name, pid in state.pids.items():
        table.add_row(name, str(pid), "running" if pid_alive(pid) else "exited")
    out.print(table)
    for name, url in state.urls.items():
        out.print(f"{name:>18}: {url}", markup=False)
    try:
        depths = queue_depths(state.env)
    except Exception as error:  # noqa: BLE001 - moto down is a status, not a traceback
        out.print(f"queues: unavailable ({type(error).__name__})", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    for queue, d in depths.items():
        out.print(f"{queue}: visible={d['visible']} in_flight={d['in_flight']} delayed={d['delayed']}", markup=False)


def main() -> None:
    cli()
