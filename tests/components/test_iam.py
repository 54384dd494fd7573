"""Every IAM document of both plans: service trust scoped to this account, ARNs in the stack's partition, and each
policy linted by parliament (its action database: every action exists, every resource fits the action)."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pulumi
import pytest

from components.iam import SOURCE_ARNS, Account, service_trust_policy
from platformctl.mocks import ACCOUNT_ID, partition_of
from platformctl.plan import Plan, PlannedResource
from tests.support import config_for, plan_with

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament imports pkg_resources, which warns that it is deprecated
    from parliament import analyze_policy_string

ROLE = "aws:iam/role:Role"
KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
# Resource type -> the input holding its policy document.
DOCUMENTS = {
    ROLE: "assumeRolePolicy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    KEY: "policy",
    KEY_POLICY: "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
}
# parliament findings that are not defects: (issue, text of the detail) -> why.
KNOWN_FALSE_POSITIVES = {
    ("UNKNOWN_CONDITION_FOR_ACTION", "kms:EncryptionContext:aws:logs:arn for action kms:DescribeKey"): (
        "AWS's documented key policy for CloudWatch Logs puts kms:Describe* under the same encryption-context "
        "condition as the cryptographic actions"
    ),
    ("MISMATCHED_TYPE", "ArnLike requires a value of type Arn but given String"): (
        "kms:EncryptionContext:* keys are typed String, yet AWS documents ArnLike on kms:EncryptionContext:aws:logs:arn"
    ),
    ("RESOURCE_MISMATCH", '"required_format": "arn:*:kms:*:*:alias/*"'): (
        "kms:UpdateAlias and kms:DeleteAlias act on an alias and on its key: a key policy grants the key's half (the "
        "alias's half is the caller's IAM policy), as AWS's key administrators statement does"
    ),
    ("RESOURCE_MISMATCH", '"action": "ec2:ModifyVpcEndpoint", "required_format": "arn:*:ec2:*:*:vpc-endpoint/*"'): (
        "ec2:ModifyVpcEndpoint is authorized against the endpoint and against each security group it attaches or "
        "detaches: FIS's disrupt-vpc-endpoint role grants the endpoint half by tag and the groups' half in the VPC"
    ),
    ("RESOURCE_MISMATCH", '"action": "ec2:CreateSecurityGroup", "required_format": "arn:*:ec2:*:*:security-group/*"'): (
        "ec2:CreateSecurityGroup is authorized against the new group and against its VPC (resource types "
        "security-group and vpc): the VPC half names this stack's VPC; parliament knows only the group half"
    ),
    ("UNKNOWN_CONDITION_FOR_ACTION", "Unknown condition ec2:Vpc for action ec2:CreateSecurityGroup"): (
        "ec2:Vpc is a condition key of the security-group resource type, which CreateSecurityGroup authorizes; "
        "parliament's action table predates it"
    ),
    ("RESOURCE_MISMATCH", "listener-rule/net/"): (
        "elasticloadbalancing:ModifyRule takes an ALB rule (listener-rule/app) or an NLB rule (listener-rule/net); "
        "parliament wants the ARN to match both"
    ),
}


def principals(statement: dict[str, Any]) -> list[str]:
    service = statement.get("Principal", {}).get("Service", [])
    return [service] if isinstance(service, str) else list(service)


def documents(plan: Plan) -> list[tuple[PlannedResource, dict[str, Any]]]:
    """Each IAM document in the plan as an identity policy parliament reads: principals dropped (parliament has no
    resource-policy mode), a trust policy's Resource the role, a key policy's `*` (this key) the key's ARN."""
    key_arns = {key.outputs["keyId"]: key.outputs["arn"] for key in plan.of_type(KEY)}
    found = []
    for resource in plan.resources:
        text = resource.inputs.get(DOCUMENTS.get(resource.type, ""))
        if not text:
            continue
        document = json.loads(text)
        own_arn = key_arns[resource.inputs["keyId"]] if resource.type == KEY_POLICY else resource.outputs.get("arn")
        for statement in document["Statement"]:
            statement.pop("Principal", None)
            if resource.type in (KEY, KEY_POLICY) or "Resource" not in statement:
                statement["Resource"] = own_arn
        found.append((resource, document))
    return found


def unexplained(findings: list[Any]) -> list[str]:
    """Findings not listed as known false positives; a finding about several actions is judged action by action."""
    left = []
    for finding in findings:
        for detail in finding.detail if isinstance(finding.detail, list) else [finding.detail]:
            text = json.dumps(detail)
            if not any(finding.issue == issue and known in text for issue, known in KNOWN_FALSE_POSITIVES):
                left.append(f"{finding.issue}: {text}")
    return left


@pytest.mark.parametrize("environment", ["prod", "staging"])
def test_every_iam_document_passes_parliament(environment: str, prod_plan: Plan, staging_plan: Plan) -> None:
    plan = prod_plan if environment == "prod" else staging_plan
    linted = documents(plan)
    # The lint reaches every kind of document the stack writes, or it proves nothing about the missing kind.
    assert {resource.type for resource, _ in linted} == set(DOCUMENTS) - {"aws:iam/policy:Policy"}
    problems = {
        resource.name: found
        for resource, document in linted
        if (found := unexplained(analyze_policy_string(json.dumps(document)).findings))
    }
    assert problems == {}


def test_parliament_finds_an_unknown_action_and_a_resource_of_the_wrong_type() -> None:
    """The lint can fail: parliament flags what a typo or a wrong ARN would write."""
    typo = {"Effect": "Allow", "Action": "sqs:SendMesage", "Resource": "*"}
    wrong_type = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:q"}
    document = {"Version": "2012-10-17", "Statement": [typo, wrong_type]}
    findings = analyze_policy_string(json.dumps(document)).findings
    assert {finding.issue for finding in findings} >= {"UNKNOWN_ACTION", "RESOURCE_MISMATCH"}


@pytest.mark.parametrize("environment", ["prod", "staging"])
def test_every_service_role_trusts_its_service_for_this_account_only(
    environment: str, prod_plan: Plan, staging_plan: Plan
) -> None:
    plan = prod_plan if environment == "prod" else staging_plan
    trusted: set[str] = set()
    for role in plan.of_type(ROLE):
        for statement in json.loads(role.inputs["assumeRolePolicy"])["Statement"]:
            services = principals(statement)
            if not services:
                continue  # a role people assume (the ECS Exec operator), not a service role
            trusted.update(services)
            conditions = statement["Condition"]
            accounts = [values["aws:SourceAccount"] for values in conditions.values() if "aws:SourceAccount" in values]
            assert accounts == [ACCOUNT_ID], role.name
            for service in services:
                name = service.removesuffix(".amazonaws.com")
                if name in SOURCE_ARNS:
                    arn_service, pattern, _ = SOURCE_ARNS[name]
                    source = conditions["ArnLike"]["aws:SourceArn"]
                    assert source.startswith(f"arn:aws:{arn_service}:") and source.endswith(f":{ACCOUNT_ID}:{pattern}")
    assert {"ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com", "backup.amazonaws.com"} <= trusted


def test_a_service_with_no_known_trust_conditions_is_refused_by_name() -> None:
    account = Account(pulumi.Output.from_input(ACCOUNT_ID), pulumi.Output.from_input("aws"), "us-east-1")
    with pytest.raises(ValueError, match=r"service 'lambda': no confused-deputy conditions known; allowed: \["):
        service_trust_policy("lambda", account)


def test_a_govcloud_stack_writes_every_arn_in_its_own_partition() -> None:
    """The mocks answer each region's partition (`aws-us-gov` here): an `arn:aws:` in a resource of the stack's
    region is a hard-coded partition, unless it is the ARN of a resource the stack keeps in a commercial region
    (the edge's certificate, WAF ACL and keys in us-east-1)."""
    region = "us-gov-west-1"
    assert partition_of(region) == "aws-us-gov"
    plan = plan_with(config_for("staging", region=region), stack="staging")
    commercial = {str(r.outputs.get("arn")) for r in plan.resources if r.outputs.get("region") == "us-east-1"}
    in_partition = [r for r in plan.resources if r.custom and r.outputs.get("region") == region]
    hard_coded = {
        resource.name: arns
        for resource in in_partition
        if (arns := set(re.findall(r"arn:aws:[^\"\s]*", json.dumps(resource.inputs))) - commercial)
    }
    assert len(in_partition) > 100
    assert hard_coded == {}
