"""security-group-rule-quota and security-group-text-valid through the real analyzer: what EC2 refuses of a group."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from platformctl.plan import PlannedResource, run_plan
from platformctl.policy import PolicyPackProcess, check_plan
from tests.policy.conftest import stack_config_file
from tests.policy.fixtures import CLOUDFRONT_PREFIX_LIST
from tests.policy.test_pack import hand_plan, resource
from tests.support import REPO

RULE = "security-group-rule-quota"
TEXT_RULE = "security-group-text-valid"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
S3_PREFIX_LIST = "pl-63a5400a"


def group(resource_name: str = "alb-sg", **inputs: object) -> PlannedResource:
    return resource(GROUP, resource_name, dict(inputs))


def rule(type_: str, name: str, owner: PlannedResource, **inputs: object) -> PlannedResource:
    deps = {"securityGroupId": [owner.urn]}
    depends_on = inputs.pop("depends_on", None)
    if isinstance(depends_on, PlannedResource):
        deps["prefixListId"] = [depends_on.urn]
    return resource(type_, name, {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, **inputs}, deps)


def cidrs(owner: PlannedResource, count: int, type_: str = INGRESS) -> list[PlannedResource]:
    return [rule(type_, f"cidr-{n}", owner, cidrIpv4=f"10.0.{n}.0/24") for n in range(count)]


def violations(pack: PolicyPackProcess, *resources: PlannedResource, config: dict | None = None) -> list[str]:
    report = check_plan(hand_plan(*resources), pack=pack, pack_config={RULE: config} if config else {})
    return [v.message for v in report.violations if v.rule == RULE]


def test_a_second_reference_to_cloudfronts_list_is_over_the_quota(pack: PolicyPackProcess) -> None:
    """The defect of issue 15: ports 443 and 80 from CloudFront's list weigh 110 of 60 inbound rules."""
    sg = group()
    https = rule(INGRESS, "from-cloudfront-443", sg, prefixListId=CLOUDFRONT_PREFIX_LIST)
    http = rule(INGRESS, "from-cloudfront-80", sg, prefixListId=CLOUDFRONT_PREFIX_LIST, fromPort=80, toPort=80)
    found = violations(pack, sg, https, http)
    assert found, "two references to a 55-entry list must not fit in 60 rules"
    assert any(
        f"alb-sg (SecurityGroup): inbound IPv4 rules weigh 110, over the quota of 60: "
        f"from-cloudfront-443: prefix list {CLOUDFRONT_PREFIX_LIST} (55)" in message
        for message in found
    ), found
    assert not violations(pack, sg, https)


def test_one_heavy_list_leaves_room_for_five_rules_not_six(pack: PolicyPackProcess) -> None:
    sg = group()
    cloudfront = rule(INGRESS, "from-cloudfront", sg, prefixListId=CLOUDFRONT_PREFIX_LIST)
    assert not violations(pack, sg, cloudfront, *cidrs(sg, 5))
    assert any(
        "weigh 61, over the quota of 60" in message for message in violations(pack, sg, cloudfront, *cidrs(sg, 6))
    )


def test_inbound_and_outbound_rules_are_counted_apart(pack: PolicyPackProcess) -> None:
    sg = group()
    cloudfront = rule(INGRESS, "from-cloudfront", sg, prefixListId=CLOUDFRONT_PREFIX_LIST)
    assert not violations(pack, sg, cloudfront, *cidrs(sg, 10, type_=EGRESS))
    found = violations(pack, sg, cloudfront, *cidrs(sg, 61, type_=EGRESS))
    assert found and all("outbound IPv4 rules weigh 61" in message for message in found), found


def test_a_list_the_stack_creates_weighs_its_max_entries_in_its_own_family(pack: PolicyPackProcess) -> None:
    sg = group()
    office_v4 = resource(PREFIX_LIST, "office-v4", {"addressFamily": "IPv4", "maxEntries": 40, "name": "office-v4"})
    office_v6 = resource(PREFIX_LIST, "office-v6", {"addressFamily": "IPv6", "maxEntries": 40, "name": "office-v6"})
    v4 = rule(INGRESS, "from-office-v4", sg, prefixListId="pl-office4", depends_on=office_v4)
    v6 = rule(INGRESS, "from-office-v6", sg, prefixListId="pl-office6", depends_on=office_v6)
    # 40 IPv4 and 40 IPv6 rules: each family stays under 60.
    assert not violations(pack, sg, office_v4, office_v6, v4, v6)
    found = violations(pack, sg, office_v4, v4, *cidrs(sg, 21))
    assert found == [
        "alb-sg (SecurityGroup): inbound IPv4 rules weigh 61, over the quota of 60: "
        "from-office-v4: prefix list office-v4 (40), " + ", ".join(f"cidr-{n}: 10.0.{n}.0/24 (1)" for n in range(21))
    ]


def test_a_list_the_stack_creates_is_weighed_before_its_id_is_known(pack: PolicyPackProcess) -> None:
    sg = group()
    big = resource(PREFIX_LIST, "partners", {"addressFamily": "IPv4", "maxEntries": 61, "name": "partners"})
    partners = rule(INGRESS, "from-partners", sg, prefixListId=UNKNOWN_STRING_VALUE, depends_on=big)
    found = violations(pack, sg, big, partners)
    assert [message for message in found if "can't run" in message] == []
    assert any("from-partners: prefix list partners (61)" in message for message in found), found


def test_the_knob_weighs_lists_the_stack_does_not_create(pack: PolicyPackProcess) -> None:
    sg = group()
    s3 = [rule(EGRESS, f"to-s3-{n}", sg, prefixListId=S3_PREFIX_LIST) for n in range(2)]
    # Unlisted, each weighs the default 55; the S3 gateway list really weighs 1.
    assert violations(pack, sg, *s3)
    assert not violations(pack, sg, *s3, config={"prefixListWeights": {S3_PREFIX_LIST: 1}})


def test_the_quota_follows_the_accounts_raised_limit(pack: PolicyPackProcess) -> None:
    sg = group()
    https = rule(INGRESS, "from-cloudfront-443", sg, prefixListId=CLOUDFRONT_PREFIX_LIST)
    http = rule(INGRESS, "from-cloudfront-80", sg, prefixListId=CLOUDFRONT_PREFIX_LIST)
    assert not violations(pack, sg, https, http, config={"rulesPerGroup": 120})


def test_inline_blocks_and_legacy_rules_count_each_cidr(pack: PolicyPackProcess) -> None:
    blocks = [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": [f"10.1.{n}.0/24" for n in range(31)]}]
    sg = group(ingress=blocks)
    legacy = resource(
        LEGACY_RULE,
        "legacy",
        {
            "type": "ingress",
            "protocol": "tcp",
            "fromPort": 80,
            "toPort": 80,
            "cidrBlocks": [f"10.2.{n}.0/24" for n in range(30)],
        },
        {"securityGroupId": [sg.urn]},
    )
    assert not violations(pack, sg)
    assert any("inbound IPv4 rules weigh 61" in message for message in violations(pack, sg, legacy))


def text_violations(pack: PolicyPackProcess, *resources: PlannedResource) -> list[str]:
    report = check_plan(hand_plan(*resources), pack=pack)
    return [v.message for v in report.violations if v.rule == TEXT_RULE]


def test_an_apostrophe_in_a_rule_description_is_refused(pack: PolicyPackProcess) -> None:
    """The ALB's rule said "CloudFront's": EC2 takes letters, digits, spaces and ._-:/()#,@[]+=;{}!$* only."""
    sg = group(description="ALB: HTTPS from CloudFront only")
    quoted = rule(INGRESS, "from-cloudfront", sg, description="443 from CloudFront's origin-facing ranges")
    plain = rule(EGRESS, "to-tasks", sg, description="the ALB to the tasks (8080)")
    assert text_violations(pack, sg, quoted, plain) == [
        'from-cloudfront (SecurityGroupIngressRule): description "443 from CloudFront\'s origin-facing ranges" '
        "has characters EC2 refuses: '"
    ]


def test_group_text_rules_length_ampersand_and_sg_prefix(pack: PolicyPackProcess) -> None:
    inline = [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.0.0.0/8"], "description": "a & b"}]
    ok = group("ok", description="Tom & Jerry: allowed in a group description", name="web-1")
    bad = group("bad", description="x" * 256, name="sg-web", ingress=inline)
    assert text_violations(pack, ok) == []
    assert sorted(text_violations(pack, bad)) == [
        "bad (SecurityGroup): description is 256 characters, over 255",
        "bad (SecurityGroup): ingress rule description 'a & b' has characters EC2 refuses: &",
        "bad (SecurityGroup): name 'sg-web' starts with sg-",
    ]


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_the_stacks_groups_fit_their_quota_and_ec2s_character_set(pack: PolicyPackProcess, stack: str) -> None:
    report = check_plan(run_plan(Path(REPO), stack), pack=pack, pack_config=stack_config_file(stack))
    assert not [v.message for v in report.violations if v.rule in (RULE, TEXT_RULE)]
