"""`platformctl diagram`: the architecture in Mermaid, drawn from the plan; the README's copy kept in sync."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from platformctl.cli import README_DIAGRAM_END, README_DIAGRAM_START, cli
from platformctl.diagram import to_markdown, to_mermaid
from platformctl.plan import Plan, run_plan
from tests.support import REPO

runner = CliRunner()
REQUEST_AND_MESSAGE_PATHS = [
    "client -->|DNS| edge_a",
    "edge_a --> edge_distribution",
    "edge_waf -.->|filters| edge_distribution",
    "edge_distribution -->|HTTPS origin| load_balancer_alb",
    "load_balancer_alb --> api_service",
    "api_service -->|SQL| database_proxy",
    "database_proxy --> database_cluster",
    "api_service -->|cache| cache_replication_group",
    "worker_service -->|cache| cache_replication_group",
    "worker_service -->|outbox relay| messaging_events",
    "messaging_events -->|fan-out| messaging_orders",
    "messaging_orders -->|consume| worker_service",
    "messaging_orders -.->|after max receives| messaging_orders_dlq",
]


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_the_diagram_draws_the_request_and_message_paths(stack: str, prod_plan: Plan, staging_plan: Plan) -> None:
    text = to_mermaid((prod_plan if stack == "prod" else staging_plan).to_json())
    lines = {line.strip() for line in text.splitlines()}
    assert text.startswith("flowchart LR\n")
    missing = [edge for edge in REQUEST_AND_MESSAGE_PATHS if edge not in lines]
    assert not missing, text
    for layer in ("edge", "load-balancer", "api", "worker", "database", "cache", "messaging"):
        assert f'["{layer}"]' in text


def test_edges_follow_the_plan_not_a_fixed_picture(prod_plan: Plan) -> None:
    document: dict[str, Any] = prod_plan.to_json()
    document["resources"] = [r for r in document["resources"] if not r["type"].startswith("aws:rds/proxy")]
    lines = {line.strip() for line in to_mermaid(document).splitlines()}
    assert "api_service -->|SQL| database_cluster" in lines  # without a proxy, straight to the cluster
    assert not any("database_proxy" in line for line in lines)


def test_the_readme_diagram_is_the_prod_plans() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split(README_DIAGRAM_START, 1)[1].split(README_DIAGRAM_END, 1)[0]
    expected = to_markdown(run_plan(REPO, "prod").to_json())
    assert block == expected, "README's diagram is stale: run `platformctl diagram prod --readme README.md`"


def write_plan(tmp_path: Path, plan: Plan) -> str:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_json()))
    return str(path)


def test_cli_prints_mermaid_or_markdown_from_a_plan_file(tmp_path: Path, staging_plan: Plan) -> None:
    plan = write_plan(tmp_path, staging_plan)
    raw = runner.invoke(cli, ["diagram", "staging", "--plan", plan])
    assert raw.exit_code == 0 and raw.output.startswith("flowchart LR\n")
    fenced = runner.invoke(cli, ["diagram", "staging", "--plan", plan, "--markdown"])
    assert fenced.output.startswith("```mermaid\nflowchart LR\n") and fenced.output.endswith("```\n")


def test_svg_needs_a_renderer_and_uses_it_when_installed(
    tmp_path: Path, staging_plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = write_plan(tmp_path, staging_plan)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    refused = runner.invoke(cli, ["diagram", "staging", "--plan", plan, "--svg", str(tmp_path / "a.svg")])
    assert refused.exit_code == 2 and "mmdc" in refused.output
    fake = tmp_path / "bin" / "mmdc"
    fake.parent.mkdir()
    # A stand-in renderer: copies the Mermaid source it is given to the output path.
    fake.write_text(
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in -i) i="$2";; -o) o="$2";; esac; shift; done\ncp "$i" "$o"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}/usr/bin{os.pathsep}/bin")
    rendered = runner.invoke(cli, ["diagram", "staging", "--plan", plan, "--svg", str(tmp_path / "a.svg")])
    assert rendered.exit_code == 0, rendered.output
    assert (tmp_path / "a.svg").read_text().startswith("flowchart LR\n")
