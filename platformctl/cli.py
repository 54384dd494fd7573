"""`platformctl`: the platform's command line (offline plan, stack-file schema)."""

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

from platformctl.plan import Plan, PlanUsageError, run_plan
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


@cli.command()
def plan(
    stack: Annotated[str, typer.Argument(help="The stack to plan: the STACK of Pulumi.STACK.yaml.")],
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the whole plan as JSON to this file.", dir_okay=False)
    ] = None,
    project_dir: ProjectDir = PROJECT_DIR,
    tree: Annotated[bool, typer.Option(help="Print the resource tree.")] = True,
) -> None:
    """Run the real program for STACK under Pulumi's mock runtime and show what it would create."""
    try:
        result = run_plan(project_dir, stack)
    except PlanUsageError as error:
        err.print(f"platformctl plan: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except StackConfigError as error:
        err.print(f"Pulumi.{stack}.yaml: invalid stack config", markup=False)
        for problem in error.problems:
            err.print(f"  {problem}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except Exception as error:  # noqa: BLE001 - a program bug is reported, not dumped as a traceback
        err.print(f"platformctl plan: the program failed: {type(error).__name__}: {error}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    if json_file is not None:
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if tree:
        _print_tree(result)
    _print_counts(result)
    if json_file is not None:
        out.print(f"plan written to {json_file}", markup=False)


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


def main() -> None:
    cli()
