"""`platformctl policy` and the policy check of `platformctl plan`: output, JSON, exit codes, README table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from platformctl.cli import cli
from tests.support import REPO

runner = CliRunner()
SUMMARY = re.compile(r"policy: stack=(\w+) rules=(\d+) resources=(\d+) components=(\d+) mandatory=(\d+) advisory=(\d+)")
WORKFLOWS = REPO / ".github" / "workflows"


def insecure_pack_config(tmp_path: Path) -> Path:
    """A pack config that turns on a rule the stacks break (3 AZs of tasks per AZ), to see a failure."""
    path = tmp_path / "strict.json"
    path.write_text(json.dumps({"ecs-autoscaling-min-tasks": {"minTasksPerAz": 50}, "tiers-span-azs": {"minZones": 6}}))
    return path


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_policy_prints_violations_by_severity_and_a_summary_line(stack: str, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(
        cli, ["policy", stack, "--json", str(out), "--policy-config", str(insecure_pack_config(tmp_path))]
    )
    lines = [line for line in result.output.splitlines() if not line.startswith("plan and violations written")]
    match = SUMMARY.fullmatch(lines[-1])
    assert match, lines[-1]
    assert match.group(1) == stack and int(match.group(2)) >= 55 and int(match.group(3)) > 50
    assert int(match.group(5)) >= 1 and result.exit_code == 1
    # Custom resources and components are counted apart: the pack checks both.
    resources = json.loads(out.read_text())["resources"]
    custom = sum(1 for resource in resources if resource["custom"])
    assert (int(match.group(3)), int(match.group(4))) == (custom, len(resources) - custom)
    assert lines[0].startswith(f"Policy violations of {stack}: ") and "mandatory" in lines[0]
    assert "HIGH severity" in lines
    index = lines.index("  tiers-span-azs [mandatory]")  # the given config replaces the stack's
    assert lines[index + 1].startswith("    fix: Set platform:availabilityZones")
    assert lines[index + 2].startswith("    - ")


def test_policy_json_is_the_plan_with_its_violations(tmp_path: Path) -> None:
    out = tmp_path / "policy.json"
    result = runner.invoke(
        cli, ["policy", "prod", "--json", str(out), "--policy-config", str(insecure_pack_config(tmp_path))]
    )
    assert result.exit_code == 1, result.output
    document = json.loads(out.read_text())
    assert set(document) == {"stack", "project", "resources", "outputs", "violations"}
    assert document["violations"]
    for violation in document["violations"]:
        assert set(violation) == {"rule", "urn", "enforcementLevel", "message"}
        assert violation["enforcementLevel"] in {"mandatory", "advisory"}
    urns = {r["urn"] for r in document["resources"]}
    assert any(v["urn"] in urns for v in document["violations"])


def test_plan_runs_the_policy_check_unless_told_not_to(tmp_path: Path) -> None:
    strict = str(insecure_pack_config(tmp_path))
    checked = runner.invoke(cli, ["plan", "staging", "--no-tree", "--policy-config", strict])
    assert checked.exit_code == 1
    assert SUMMARY.fullmatch(checked.output.splitlines()[-1])
    out = tmp_path / "plan.json"
    skipped = runner.invoke(cli, ["plan", "staging", "--no-tree", "--no-policy", "--json", str(out)])
    assert skipped.exit_code == 0, skipped.output
    assert skipped.output.splitlines()[-1] == f"plan written to {out}"
    assert set(json.loads(out.read_text())) == {"stack", "project", "resources", "outputs"}


def test_a_bad_pack_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"no-such-rule": "mandatory"}))
    result = runner.invoke(cli, ["policy", "staging", "--policy-config", str(bad)])
    assert result.exit_code == 2
    assert "no-such-rule: no such rule in the pack" in result.output
    assert runner.invoke(cli, ["policy"]).exit_code == 2
    assert runner.invoke(cli, ["policy", "qa"]).exit_code == 2


def test_readme_rule_table_matches_the_pack() -> None:
    result = runner.invoke(cli, ["policy", "--rules-markdown"])
    assert result.exit_code == 0, result.output
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- rules:start -->\n", 1)[1].split("<!-- rules:end -->", 1)[0]
    assert section == result.output, "README's rule table is stale: run `platformctl policy --rules-markdown`"
    assert section.count("\n| `") >= 55


def test_workflows_pass_actionlint() -> None:
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    assert files
    completed = subprocess.run(
        # The binary comes with the dev dependencies, beside this interpreter.
        [str(Path(sys.executable).parent / "actionlint"), "-no-color", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_workflows_preview_each_stack_with_the_pack_and_deploy_prod_behind_approval() -> None:
    pull_request = (WORKFLOWS / "pull-request.yml").read_text()
    deploy = (WORKFLOWS / "deploy.yml").read_text()
    assert "pulumi/actions@" in pull_request and "comment-on-pr: true" in pull_request
    assert "policyPacks: policy" in pull_request
    assert "policyPackConfigs: policy/config/${{ matrix.stack }}.json" in pull_request
    assert "aws-actions/configure-aws-credentials@" in pull_request and "id-token: write" in pull_request
    assert "environment: production" in deploy and "needs: up-staging" in deploy
    for text in (pull_request, deploy):
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
