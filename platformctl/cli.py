"""`platformctl`: the platform's command line (offline plan, policy check, stack-file schema)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from platformctl.capacity import Capacity
from platformctl.cost import CostEstimate, UsageAssumptions
from platformctl.plan import Plan, PlanUsageError, read_project, read_stack_config, run_plan
from platformctl.policy import PACK_DIR, PolicyError, PolicyPackProcess, PolicyReport, check_plan, load_pack_config
from platformctl.policy.config import levels_by_stack
from platformctl.policy.report import rules_markdown
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
# No emoji codes: ARNs hold `:secret:` and Markdown keeps `:warning:` for GitHub to render.
out = Console(highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

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
    _check_output_path("plan", json_file)
    result = _run_plan("plan", project_dir, stack)
    report = _check_policy(result, project_dir, policy_pack, policy_config) if policy else None
    if json_file is not None:
        _write_json(json_file, result, report)
    if tree:
        _print_tree(result)
    _print_counts(result)
    if json_file is not None:
        out.print(f"plan written to {json_file}", markup=False)
    for warning in _capacity_warnings(project_dir, stack):
        out.print(warning, markup=False)
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
    _check_output_path("policy", json_file)
    result = _run_plan("policy", project_dir, stack)
    report = _check_policy(result, project_dir, policy_pack, policy_config)
    if json_file is not None:
        _write_json(json_file, result, report)
        out.print(f"plan and violations written to {json_file}", markup=False)
    _print_violations(report)
    if report.mandatory:
        raise typer.Exit(EXIT_FAILED)


def _check_output_path(command: str, path: Path | None) -> None:
    """Refuse an output file that cannot be written before the plan runs, not with a traceback after it."""
    if path is None:
        return
    if path.is_dir():
        problem = "is a directory"
    elif not path.parent.is_dir():
        problem = f"cannot be written: no directory {path.parent}"
    else:
        return
    err.print(f"platformctl {command}: {path} {problem}", markup=False)
    raise typer.Exit(EXIT_INVALID)


def _run_plan(command: str, project_dir: Path, stack: str) -> Plan:
    try:
        return run_plan(project_dir, stack)
    except PlanUsageError as error:
        err.print(f"platformctl {command}: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except StackConfigError as error:
        _invalid_config(stack, error)
    except Exception as error:  # noqa: BLE001 - a program bug is reported, not dumped as a traceback
        err.print(f"platformctl {command}: the program failed: {type(error).__name__}: {error}", markup=False)
        raise typer.Exit(EXIT_FAILED) from None


def _invalid_config(stack: str, error: StackConfigError) -> NoReturn:
    err.print(f"Pulumi.{stack}.yaml: invalid stack config", markup=False)
    for problem in error.problems:
        err.print(f"  {problem}", markup=False)
    raise typer.Exit(EXIT_INVALID) from None


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
    for line in report.text():
        out.print(line, markup=False)


def _rules_table(pack_dir: Path) -> str:
    """The pack's rules as a Markdown table, with the enforcement each stack's pack config gives them."""
    try:
        with PolicyPackProcess(pack_dir) as pack:
            rules = pack.rules()
        levels = levels_by_stack(rules, pack_dir / "config")
    except PolicyError as error:
        err.print(f"platformctl policy: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    return rules_markdown(rules, levels)


@cli.command()
def diff(
    base: Annotated[Path, typer.Argument(help="The plan before the change (`platformctl plan STACK --json`).")],
    head: Annotated[Path, typer.Argument(help="The plan after the change.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON, for tools.")] = False,
) -> None:
    """What HEAD changes against BASE, resource by resource; exit 1 if anything would be replaced or deleted."""
    from platformctl.diff import DiffUsageError, diff_plans, load_plan_file, render_text  # noqa: PLC0415

    try:
        result = diff_plans(load_plan_file(base), load_plan_file(head))
    except DiffUsageError as error:
        err.print(f"platformctl diff: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        out.print(json.dumps(result.to_json(), indent=2), markup=False)
    else:
        for line in render_text(result):
            out.print(line, markup=False)
    if result.destructive:
        raise typer.Exit(EXIT_FAILED)


@cli.command()
def cost(  # noqa: PLR0917 - typer options
    stack: Annotated[
        str, typer.Argument(help="The stack: its usage assumptions (`cost:usage`) and, without --plan, its plan.")
    ],
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="Estimate this plan (`plan --json`) instead of planning STACK.", dir_okay=False),
    ] = None,
    against: Annotated[
        Path | None, typer.Option("--against", help="Also show the change against this other plan.", dir_okay=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON, for tools.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the per-layer summary as Markdown.")] = False,
    project_dir: ProjectDir = PROJECT_DIR,
) -> None:
    """Monthly USD per resource, per layer and in total, from the offline plan and the region's list prices."""
    from platformctl.cost import CostError, compare, estimate  # noqa: PLC0415
    from platformctl.cost import render_markdown as cost_markdown  # noqa: PLC0415
    from platformctl.diff import DiffUsageError, load_plan_file  # noqa: PLC0415

    try:
        usage = _usage(project_dir, stack)
        head = load_plan_file(plan_file) if plan_file else _run_plan("cost", project_dir, stack).to_json()
        result = estimate(head, usage)
        base = estimate(load_plan_file(against), usage) if against else None
    except (PlanUsageError, CostError, DiffUsageError) as error:
        err.print(f"platformctl cost: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        document = result.to_json()
        if base is not None:
            document["against"] = {
                "stack": base.stack,
                "totalMonthlyUsd": round(base.total, 2),
                "changes": [
                    {"layer": row.key, "before": round(row.before, 2), "after": round(row.after, 2)}
                    for row in compare(base, result)
                ],
            }
        out.print(json.dumps(document, indent=2), markup=False)
    elif markdown:
        out.print(cost_markdown(result, base), end="", markup=False)
    else:
        _print_cost(result, base)
    if result.over_budget:
        err.print(
            f"warning: the estimate ${result.total:,.2f} exceeds the stack's budget ${result.budget_usd:,.2f}",
            markup=False,
        )


def _print_cost(result: CostEstimate, base: CostEstimate | None) -> None:
    from platformctl.cost import compare, money, signed_money  # noqa: PLC0415

    items = Table(title=f"{result.stack}: monthly cost by resource ({result.region})", title_justify="left")
    for column in ("layer", "resource", "item", "quantity", "unit", "unit USD", "monthly USD"):
        items.add_column(column, justify="right" if column in {"quantity", "unit USD", "monthly USD"} else "left")
    for item in sorted(result.items, key=lambda i: (i.layer, i.resource, -i.monthly_usd)):
        items.add_row(
            item.layer,
            item.resource,
            item.item,
            f"{item.quantity:,.4g}",
            item.unit,
            f"{item.unit_usd:g}",
            money(item.monthly_usd),
        )
    out.print(items)
    layers = Table(title=f"{result.stack}: monthly cost by layer", title_justify="left")
    layers.add_column("layer")
    layers.add_column("monthly USD", justify="right")
    for layer, usd in result.by_layer().items():
        layers.add_row(layer, money(usd))
    layers.add_row("total", money(result.total))
    out.print(layers)
    if base is not None:
        change = Table(title=f"change against {base.stack}", title_justify="left")
        for column in ("layer", "before", "after", "delta"):
            change.add_column(column, justify="left" if column == "layer" else "right")
        for row in compare(base, result):
            change.add_row(row.key, money(row.before), money(row.after), signed_money(row.delta))
        out.print(change)
    for line in result.unpriced:
        out.print(f"not priced: {line}", markup=False)
    budget = f" budget={result.budget_usd:.2f}" if result.budget_usd is not None else ""
    out.print(f"cost: stack={result.stack} region={result.region} monthly_usd={result.total:.2f}{budget}", markup=False)


@cli.command()
def capacity(  # noqa: PLR0917 - typer options
    stack: Annotated[str, typer.Argument(help="The stack: its `capacity` peak and mix, task sizes and autoscaling.")],
    peak_rps: Annotated[
        float | None,
        typer.Option("--peak-rps", min=0.001, help="Requests per second at the peak (default: the stack's config)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model as JSON, for tools.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 when a service's maxCount cannot carry the peak.")] = False,
    route_cpu: Annotated[
        Path | None,
        typer.Option(
            "--route-cpu", help="The measured CPU per request (default: load/route_cpu.json).", dir_okay=False
        ),
    ] = None,
    project_dir: ProjectDir = PROJECT_DIR,
) -> None:
    """The tasks STACK's API and worker need at its peak request rate, against their autoscaling min and max.

    Exit 0 (a WARN line when a maxCount is too low; 1 with --strict), 2 on bad input."""
    from platformctl import capacity as model  # noqa: PLC0415

    try:
        config = model.stack_config(project_dir, stack)
        result = model.model(config, stack, model.load_route_cpu(route_cpu or model.ROUTE_CPU_FILE), peak_rps)
    except StackConfigError as error:
        _invalid_config(stack, error)
    except (PlanUsageError, model.CapacityError) as error:
        err.print(f"platformctl capacity: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        out.print(json.dumps(result.to_json(), indent=2), markup=False)
    else:
        _print_capacity(result)
    if strict and result.warnings:
        raise typer.Exit(EXIT_FAILED)


def _capacity_warnings(project_dir: Path, stack: str) -> list[str]:
    """The capacity model's warnings, as advice beside a plan (`platformctl capacity --strict` is the gate); none
    where it cannot run (no measurement in this checkout)."""
    from platformctl import capacity as model  # noqa: PLC0415

    try:
        return model.model(model.stack_config(project_dir, stack), stack, model.load_route_cpu()).warnings
    except (model.CapacityError, PlanUsageError, StackConfigError):
        return []


def _print_capacity(result: Capacity) -> None:
    mix = ", ".join(f"{name} {share:g} %" for name, share in result.mix.items())
    table = Table(
        title=f"{result.stack}: tasks at {result.peak_rps:g} req/s ({mix})", title_justify="left", min_width=100
    )
    table.add_column("service")
    numbers = ("load/s", "CPU ms/req", "vCPU x target", "for CPU", "for requests", "AZ floor", "needed", "min", "max")
    for column in (*numbers, "max carries"):
        table.add_column(column, justify="right")
    for s in result.services:
        carries = "any" if s.max_carries_rps is None else f"{s.max_carries_rps:.0f} req/s"
        table.add_row(
            s.service,
            f"{s.demand_per_second:g}",
            f"{s.cpu_ms_per_request:g}",
            f"{s.vcpu:g} x {s.cpu_target_percent:g} %",
            str(s.tasks_for_cpu),
            "-" if s.tasks_for_requests is None else str(s.tasks_for_requests),
            str(s.az_floor),
            f"{s.needed} ({s.bound_by})",
            str(s.min_count),
            str(s.max_count),
            carries,
        )
    out.print(table)
    out.print(f"CPU per request measured {result.route_cpu.measured_at} on {result.route_cpu.machine}", markup=False)
    for warning in result.warnings:
        out.print(warning, markup=False)
    needed = " ".join(f"{s.service}_needed={s.needed} {s.service}_max={s.max_count}" for s in result.services)
    status = "WARN" if result.warnings else "ok"
    out.print(f"capacity: stack={result.stack} peak_rps={result.peak_rps:g} {needed} status={status}", markup=False)


@cli.command()
def preflight(
    stack: Annotated[str, typer.Argument(help="The stack about to be deployed (planned offline unless --plan).")],
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="Check for this plan (`plan --json`) instead of planning STACK.", dir_okay=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON, for tools.")] = False,
    project_dir: ProjectDir = PROJECT_DIR,
) -> None:
    """Read-only checks of the AWS account the environment's credentials reach; exit 1 if any fails."""
    from platformctl.cost import CostError, plan_region  # noqa: PLC0415
    from platformctl.diff import DiffUsageError, load_plan_file  # noqa: PLC0415
    from platformctl.preflight import FAILING, Target, boto3_clients, run_checks  # noqa: PLC0415

    try:
        config, _ = read_stack_config(project_dir, read_project(project_dir), stack)
        edge = json.loads(config.get("platform:edge", "{}"))
        document = load_plan_file(plan_file) if plan_file else _run_plan("preflight", project_dir, stack).to_json()
        target = Target(region=plan_region(document), hosted_zone=str(edge.get("hostedZone") or edge.get("domain", "")))
    except (PlanUsageError, DiffUsageError, CostError, ValueError) as error:
        err.print(f"platformctl preflight: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    checks = run_checks(document, target, boto3_clients())
    if as_json:
        out.print(json.dumps([check.to_json() for check in checks], indent=2), markup=False)
    else:
        for check in checks:
            out.print(check.line(), markup=False)
        failed = sum(1 for check in checks if check.status in FAILING)
        out.print(f"preflight: stack={stack} region={target.region} checks={len(checks)} failed={failed}", markup=False)
    if any(check.status in FAILING for check in checks):
        raise typer.Exit(EXIT_FAILED)


@cli.command(name="pr-comment")
def pr_comment(  # noqa: PLR0917 - typer options
    stack: Annotated[str, typer.Argument(help="The stack the plans are of (its `cost:usage` is read).")],
    head: Annotated[Path, typer.Option("--head", help="The pull request's plan, with `violations`.", dir_okay=False)],
    base: Annotated[
        Path | None, typer.Option("--base", help="The base branch's plan (absent: no diff).", dir_okay=False)
    ] = None,
    commit: Annotated[str, typer.Option(help="The head commit, named in the heading.")] = "",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
    project_dir: ProjectDir = PROJECT_DIR,
    base_project_dir: Annotated[
        Path | None,
        typer.Option(
            help="The base commit's checkout, for its own `cost:usage` (default: --project-dir's).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    policy_pack: PolicyPack = PACK_DIR,
) -> None:
    """The pull request comment for STACK (marked so the workflow edits it in place on the next push)."""
    from platformctl import pr_comment as comment  # noqa: PLC0415
    from platformctl.cost import CostError  # noqa: PLC0415
    from platformctl.diff import DiffUsageError, load_plan_file  # noqa: PLC0415

    _check_output_path("pr-comment", output)
    try:
        usage, base_usage = _usage(project_dir, stack), _usage(base_project_dir or project_dir, stack)
        head_plan = load_plan_file(head)
        base_plan = load_plan_file(base) if base is not None else None
        with PolicyPackProcess(policy_pack) as pack:
            remediation = {rule.name: rule.remediation for rule in pack.rules()}
    except (PlanUsageError, CostError, DiffUsageError, PolicyError) as error:
        err.print(f"platformctl pr-comment: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    text = comment.build(
        stack,
        base=base_plan,
        head=head_plan,
        usage=usage,
        base_usage=base_usage,
        remediation=remediation,
        commit=commit,
    )
    if output is None:
        out.print(text, end="", markup=False)
    else:
        output.write_text(text)


def _usage(project_dir: Path, stack: str) -> UsageAssumptions:
    """The stack file's `cost:usage` (defaults where absent); PlanUsageError or CostError when unreadable."""
    from platformctl.cost import parse_usage  # noqa: PLC0415

    config, _ = read_stack_config(project_dir, read_project(project_dir), stack)
    return parse_usage(config.get("cost:usage"))


README_DIAGRAM_START, README_DIAGRAM_END = "<!-- diagram:start -->\n", "<!-- diagram:end -->"


@cli.command()
def diagram(  # noqa: PLR0917 - typer options
    stack: Annotated[str, typer.Argument(help="The stack to draw (planned offline unless --plan is given).")],
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="Draw this plan (`plan --json`) instead of planning STACK.", dir_okay=False),
    ] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Wrap the Mermaid in a ```mermaid block.")] = False,
    svg: Annotated[
        Path | None, typer.Option("--svg", help="Also render SVG to this file (needs mermaid-cli's `mmdc` on PATH).")
    ] = None,
    readme: Annotated[
        Path | None,
        typer.Option(
            "--readme", help="Replace the block between the diagram markers of this Markdown file.", dir_okay=False
        ),
    ] = None,
    project_dir: ProjectDir = PROJECT_DIR,
) -> None:
    """The architecture drawn from the plan: layers as groups, traffic and data paths as edges, in Mermaid."""
    from platformctl.diagram import to_markdown, to_mermaid  # noqa: PLC0415
    from platformctl.diff import DiffUsageError, load_plan_file  # noqa: PLC0415

    _check_output_path("diagram", svg)
    renderer = shutil.which("mmdc") if svg is not None else None
    if svg is not None and renderer is None:
        err.print(
            "platformctl diagram: --svg needs mmdc (`npm install -g @mermaid-js/mermaid-cli`)",
            markup=False,
        )
        raise typer.Exit(EXIT_INVALID)
    try:
        document = load_plan_file(plan_file) if plan_file else _run_plan("diagram", project_dir, stack).to_json()
    except DiffUsageError as error:
        err.print(f"platformctl diagram: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if readme is not None:
        _replace_block(readme, to_markdown(document))
        out.print(f"diagram written to {readme}", markup=False)
        return
    text = to_mermaid(document)
    out.print(to_markdown(document) if markdown else text, end="", markup=False)
    if renderer is not None and svg is not None:
        source = svg.with_suffix(".mmd")
        source.write_text(text)
        completed = subprocess.run(  # noqa: S603 - the renderer found on PATH, with paths this command chose
            [renderer, "-i", str(source), "-o", str(svg)], capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            err.print(f"platformctl diagram: mmdc failed: {completed.stderr.strip()}", markup=False)
            raise typer.Exit(EXIT_FAILED)


def _replace_block(path: Path, block: str) -> None:
    text = path.read_text() if path.is_file() else ""
    if README_DIAGRAM_START not in text or README_DIAGRAM_END not in text:
        err.print(
            f"platformctl diagram: {path} has no {README_DIAGRAM_START.strip()} ... {README_DIAGRAM_END} markers",
            markup=False,
        )
        raise typer.Exit(EXIT_INVALID)
    head, rest = text.split(README_DIAGRAM_START, 1)
    path.write_text(head + README_DIAGRAM_START + block + README_DIAGRAM_END + rest.split(README_DIAGRAM_END, 1)[1])


@cli.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Write the JSON Schema of a stack file (Pulumi.STACK.yaml), for editors and other tools."""
    _check_output_path("schema", output)
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
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--setting",
            help="An app setting NAME=VALUE by its contract name, repeatable (e.g. RATE_LIMIT_PER_MINUTE=100000).",
        ),
    ] = None,
) -> None:
    """Start moto, the queues, migrations, a seeded catalog, the API, relay, worker and stub; Ctrl-C stops all."""
    from platformctl.local import LocalConfig, LocalError, LocalRuntime, run_until_signalled  # noqa: PLC0415

    extra = _settings(setting or [])
    config = LocalConfig(
        api_port=api_port, moto_port=moto_port, notifier_port=notifier_port, db_name=db_name, extra=extra
    )
    try:
        LocalRuntime(config).settings_env()  # an unknown name is refused before anything starts
    except LocalError as error:
        err.print(f"platformctl local up: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    try:
        code = run_until_signalled(LocalRuntime(config, echo=lambda line: out.print(line, markup=False)))
    except LocalError as error:
        err.print(f"platformctl local up: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    raise typer.Exit(code)


def _settings(pairs: list[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            err.print(f"platformctl local up: --setting takes NAME=VALUE (got {pair!r})", markup=False)
            raise typer.Exit(EXIT_INVALID)
        settings[name] = value
    return settings


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
