"""How the pack behaves as a whole: unknown values, property dependencies, pack config, the real stacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pulumi_policy import Severity
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE
from rules import all_rules
from rules.common import AREAS, Rule

from platformctl.plan import SECRET_MASK, Plan, PlannedResource, run_plan, run_program
from platformctl.policy import PolicyError, PolicyPackProcess, check_plan, resolve_config
from tests.policy.conftest import stack_config_file
from tests.policy.fixtures import architecture
from tests.support import REPO

PREFIX = "urn:pulumi:test::platform::"
# Stack rules that fail on the real stacks until the layers they check land (see the lead's report).
PENDING: dict[str, str] = {
    "required-alarms-exist": "the observability layer has no ALB 5xx alarm until the load-balancer layer lands",
}


def resource(type_: str, name: str, inputs: dict, deps: dict[str, list[str]] | None = None) -> PlannedResource:
    return PlannedResource(
        urn=f"{PREFIX}{type_}::{name}",
        type=type_,
        name=name,
        parent=None,
        custom=True,
        id=f"{name}-id",
        inputs=inputs,
        outputs={},
        dependencies=sorted({urn for urns in (deps or {}).values() for urn in urns}),
        property_dependencies=deps or {},
    )


def hand_plan(*resources: PlannedResource) -> Plan:
    return Plan(stack="test", project="platform", resources=list(resources), outputs={})


BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ALL_ON = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}


def test_an_unknown_value_is_reported_not_passed(pack: PolicyPackProcess) -> None:
    cluster = resource(
        "aws:rds/cluster:Cluster", "db", {"storageEncrypted": UNKNOWN_BOOLEAN_VALUE, "kmsKeyId": UNKNOWN_STRING_VALUE}
    )
    report = check_plan(hand_plan(cluster), pack=pack)
    notices = [v for v in report.violations if v.rule == "aurora-storage-encrypted-cmk"]
    assert len(notices) == 1
    assert notices[0].enforcement_level == "advisory"
    assert "can't run policy 'aurora-storage-encrypted-cmk'" in notices[0].message
    assert "db (Cluster).storageEncrypted" in notices[0].message


def test_a_stack_rule_checks_the_rest_and_reports_each_unknown(pack: PolicyPackProcess) -> None:
    known, unknown = resource(BUCKET, "known", {}), resource(BUCKET, "unknown", {})
    resources = [
        known,
        unknown,
        resource(PAB, "known-pab", {**ALL_ON, "blockPublicPolicy": False}, {"bucket": [known.urn]}),
        resource(PAB, "unknown-pab", {**ALL_ON, "ignorePublicAcls": UNKNOWN_BOOLEAN_VALUE}, {"bucket": [unknown.urn]}),
    ]
    report = check_plan(hand_plan(*resources), pack=pack)
    found = [v for v in report.violations if v.rule == "s3-block-public-access"]
    assert [(v.urn, v.enforcement_level) for v in found if "can't run" not in v.message] == [(known.urn, "mandatory")]
    (notice,) = [v for v in found if "can't run" in v.message]
    assert (
        notice.enforcement_level == "advisory"
        and "unknown-pab (BucketPublicAccessBlock).ignorePublicAcls" in notice.message
    )


def test_a_secret_the_plan_masks_is_reported_as_masked(pack: PolicyPackProcess) -> None:
    """The pack keeps its own copy of the plan's mask (it cannot import platformctl); a copy that drifts
    would report a masked document as JSON not known yet."""
    task = resource("aws:ecs/taskDefinition:TaskDefinition", "api-task", {"containerDefinitions": SECRET_MASK})
    report = check_plan(hand_plan(task), pack=pack)
    notices = [v.message for v in report.violations if v.rule == "ecs-container-logging"]
    assert len(notices) == 1
    assert "api-task (TaskDefinition).containerDefinitions (a secret the offline plan masks)" in notices[0]


def test_the_pack_serves_its_rules_grouped_by_area_in_the_one_order(pack: PolicyPackProcess) -> None:
    """`platformctl policy --rules-markdown` keeps the pack's order, so the README reads area by area."""
    served = [rule.area for rule in pack.rules()]
    assert served == sorted(served, key=AREAS.index)
    assert set(served) == set(AREAS)


def test_a_rule_declared_without_a_check_is_refused_by_name() -> None:
    declared = Rule(
        name="half-declared",
        area="network",
        kind="security",
        severity=Severity.LOW,
        summary="No check.",
        seed="none",
        checks="",
        remediation="Declare it on its check.",
    )
    with pytest.raises(TypeError, match="rule half-declared has no check"):
        declared.policy()
    assert declared(lambda resource, config, report: None).policy().name == "half-declared"


def test_settings_are_tied_to_buckets_by_property_dependencies_not_ids(pack: PolicyPackProcess) -> None:
    first, second = resource(BUCKET, "first", {}), resource(BUCKET, "second", {})
    # The block names the first bucket's id, but was computed from the second bucket (a preview's ids are unknown).
    block = resource(PAB, "pab", {**ALL_ON, "bucket": "first-id"}, {"bucket": [second.urn]})
    report = check_plan(hand_plan(first, second, block), pack=pack)
    found = [v for v in report.violations if v.rule == "s3-block-public-access"]
    assert [v.urn for v in found] == [first.urn]


def test_the_staging_config_makes_availability_and_recovery_advisory(pack: PolicyPackProcess) -> None:
    plan = run_program(lambda: architecture(secure=False), project="platform", stack="test")
    staging = check_plan(plan, pack=pack, pack_config=stack_config_file("staging"))
    prod = check_plan(plan, pack=pack, pack_config=stack_config_file("prod"))
    kinds = {rule.name: rule.kind for rule in all_rules()}
    for violation in staging.violations:
        if "can't run" in violation.message:
            continue
        expected = "advisory" if kinds[violation.rule] in ("availability", "recovery") else None
        if expected:
            assert violation.enforcement_level == expected, violation
        elif violation.rule != "secrets-rotated":
            assert violation.enforcement_level == "mandatory", violation
    assert {v.rule for v in prod.mandatory} >= {"nat-gateway-per-az", "aurora-multi-az", "backup-cross-region-copy"}


def test_knobs_come_from_the_pack_config(pack: PolicyPackProcess) -> None:
    plan = run_program(lambda: architecture(secure=True), project="platform", stack="test")
    config = {
        "ecs-autoscaling-min-tasks": {"minTasksPerAz": 3},
        "required-tags": {"requiredTags": ["owner", "team"]},
        "aurora-backup-retention": {"enforcementLevel": "advisory", "minDays": 14},
        "waf-rate-based-rule": "disabled",
    }
    report = check_plan(plan, pack=pack, pack_config=config)
    by_rule = {(v.rule, v.enforcement_level) for v in report.violations}
    assert ("ecs-autoscaling-min-tasks", "mandatory") in by_rule
    assert ("required-tags", "mandatory") in by_rule
    assert ("aurora-backup-retention", "advisory") in by_rule
    assert report.levels["waf-rate-based-rule"] == "disabled"


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"no-such-rule": "advisory"}, "no-such-rule: no such rule in the pack"),
        ({"aurora-backup-retention": {"minDayz": 3}}, "aurora-backup-retention.minDayz: no such setting"),
        ({"aurora-backup-retention": {"minDays": "seven"}}, "aurora-backup-retention.minDays: expected integer"),
        ({"all": "sometimes"}, "unknown enforcement level 'sometimes'"),
    ],
)
def test_a_bad_pack_config_is_refused(pack: PolicyPackProcess, config: dict, problem: str) -> None:
    with pytest.raises(PolicyError, match="invalid policy pack config") as caught:
        resolve_config(pack.rules(), config)
    assert problem in str(caught.value)


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_the_config_files_set_enforcement_by_stack(pack: PolicyPackProcess, stack: str) -> None:
    config = json.loads((REPO / "policy" / "config" / f"{stack}.json").read_text())
    levels = {name: level for name, (level, _) in resolve_config(pack.rules(), config).items()}
    for rule in all_rules():
        if rule.kind in ("availability", "recovery"):
            assert levels[rule.name] == ("mandatory" if stack == "prod" else "advisory"), rule.name
        elif rule.kind == "security" and rule.name != "secrets-rotated":
            assert levels[rule.name] == "mandatory", rule.name


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_the_stacks_pass_every_mandatory_rule(pack: PolicyPackProcess, stack: str) -> None:
    plan = run_plan(Path(REPO), stack)
    report = check_plan(plan, pack=pack, pack_config=stack_config_file(stack))
    failing = sorted({(v.rule, v.message) for v in report.mandatory if v.rule not in PENDING})
    assert not failing, failing


def test_the_pack_runs_as_the_engine_runs_it(pack: PolicyPackProcess) -> None:
    args = pack.process.args
    assert list(args[1:4]) == ["-u", "-m", "pulumi.policy"] and args[5] == "."
    assert args[4] == pack.engine_address
    assert Path(pack.process.args[0]).name.startswith("python")
    assert (REPO / "policy" / "PulumiPolicy.yaml").is_file()


def test_a_pack_that_cannot_start_is_reported(tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text('raise SystemExit("boom: broken pack")\n')
    with pytest.raises(PolicyError, match="did not start: boom: broken pack"):
        PolicyPackProcess(tmp_path)


def test_the_pack_pins_the_policy_sdk_the_project_tests_with() -> None:
    """The pack's own requirements (what `pulumi preview --policy-pack` installs) match the lock's versions."""
    pyproject = (REPO / "pyproject.toml").read_text()
    for line in (REPO / "policy" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert f'"{line}"' in pyproject, f"policy/requirements.txt pins {line}, pyproject.toml does not"


def test_the_pack_needs_only_its_own_requirements() -> None:
    """Rules read plain properties; the pack never imports the program, pulumi-aws or this repository."""
    for module in (REPO / "policy").rglob("*.py"):
        text = module.read_text()
        for forbidden in ("pulumi_aws", "components", "stack_config", "platformctl"):
            assert not re.search(rf"^\s*(import|from) {forbidden}\b", text, re.M), (module, forbidden)
