"""The cache layer: a Valkey/Redis replication group, as the program registers it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.cache import Cache, CacheArgs, parameter_group_family
from components.naming import BACKUP_TAG, LogPolicy, Naming
from components.network import Placement
from platformctl.plan import SECRET_MASK, Plan, PlannedResource, run_program
from stack_config.schema import CacheConfig
from tests.support import PROJECT, by_name, config_for, plan_with

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
PARAMETER_GROUP = "aws:elasticache/parameterGroup:ParameterGroup"
SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SUBNET = "aws:ec2/subnet:Subnet"
APP_SGS = ["sg-0app0api000000001", "sg-0app0worker000002"]
KNOWN_TOKEN = "known-token-given-in-plain-text-0123456789"


def direct_cache(naming: Naming) -> None:
    """The component alone, given app security groups and a plain-text token, on Redis OSS 7.1."""
    config: dict[str, Any] = {"engine": "redis", "engineVersion": "7.1", "evictionPolicy": "allkeys-lru"}
    Cache(
        "cache",
        CacheArgs(
            config=CacheConfig.model_validate({**config, "replicaCount": 2}),
            naming=naming,
            placement=Placement("vpc-0test", ["subnet-a", "subnet-b"], ["us-east-1a", "us-east-1b"], APP_SGS),
            data_key_arn="arn:aws:kms:us-east-1:123456789012:key/data-key",
            logs=LogPolicy(30, "arn:aws:kms:us-east-1:123456789012:key/logs-key"),
            auth_token=KNOWN_TOKEN,
            auth_token_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:auth-AbCdEf",
        ),
    )


@pytest.fixture(scope="module")
def direct_plan() -> Plan:
    return run_program(lambda: direct_cache(Naming(PROJECT, "test", "prod")), project=PROJECT, stack="test")


def group(plan: Plan) -> PlannedResource:
    (found,) = plan.of_type(REPLICATION_GROUP)
    return found


@pytest.mark.parametrize(
    ("stack", "zones"),
    [("prod_plan", ["us-east-1a", "us-east-1b", "us-east-1c"]), ("staging_plan", ["us-east-1a", "us-east-1b"])],
)
def test_a_primary_and_replicas_across_azs_with_failover(
    stack: str, zones: list[str], request: pytest.FixtureRequest
) -> None:
    inputs = group(request.getfixturevalue(stack)).inputs
    assert inputs["numCacheClusters"] == len(zones)  # prod 1 + 2 replicas, staging 1 + 1
    assert inputs["preferredCacheClusterAzs"] == zones
    assert inputs["automaticFailoverEnabled"] is True
    assert inputs["multiAzEnabled"] is True


def test_replicas_round_robin_when_there_are_more_nodes_than_azs(direct_plan: Plan) -> None:
    assert group(direct_plan).inputs["preferredCacheClusterAzs"] == ["us-east-1a", "us-east-1b", "us-east-1a"]


def test_engine_and_node_type_from_config(prod_plan: Plan, staging_plan: Plan) -> None:
    prod = group(prod_plan).inputs
    assert (prod["engine"], prod["engineVersion"], prod["nodeType"]) == ("valkey", "8.0", "cache.r7g.large")
    assert group(staging_plan).inputs["nodeType"] == "cache.t4g.small"


def test_encrypted_at_rest_with_the_data_key_and_tls_required_in_transit(prod_plan: Plan) -> None:
    inputs = group(prod_plan).inputs
    assert inputs["atRestEncryptionEnabled"] is True
    assert inputs["kmsKeyId"] == prod_plan.outputs["kms_key_arns"]["data"]
    assert inputs["transitEncryptionEnabled"] is True
    assert inputs["transitEncryptionMode"] == "required"


def test_the_auth_token_is_the_generated_secret_and_stays_secret(prod_plan: Plan, direct_plan: Plan) -> None:
    inputs = group(prod_plan).inputs
    assert inputs["authToken"] == SECRET_MASK
    token_value = by_name(prod_plan, "security-cache-auth-token-value")
    assert token_value.urn in group(prod_plan).property_dependencies["authToken"]
    # Even a token handed over in plain text is registered as a secret.
    assert group(direct_plan).inputs["authToken"] == SECRET_MASK
    assert KNOWN_TOKEN not in json.dumps(direct_plan.to_json())
    component = by_name(prod_plan, "cache")
    assert component.outputs["auth_token_secret_arn"] == prod_plan.outputs["secret_arns"]["cache-auth-token"]


@pytest.mark.parametrize(("stack", "days"), [("prod_plan", 7), ("staging_plan", 1)])
def test_snapshots_and_maintenance_windows(stack: str, days: int, request: pytest.FixtureRequest) -> None:
    inputs = group(request.getfixturevalue(stack)).inputs
    assert inputs["snapshotRetentionLimit"] == days
    assert inputs["snapshotWindow"] == "02:00-03:00"
    assert inputs["maintenanceWindow"] == "sun:05:30-sun:06:30"
    assert inputs["autoMinorVersionUpgrade"] is True


def test_the_slow_log_goes_to_an_encrypted_log_group(prod_plan: Plan) -> None:
    (delivery,) = group(prod_plan).inputs["logDeliveryConfigurations"]
    log_group = by_name(prod_plan, "cache-slow-log")
    assert delivery == {
        "destination": log_group.inputs["name"],
        "destinationType": "cloudwatch-logs",
        "logFormat": "json",
        "logType": "slow-log",
    }
    assert log_group.inputs["kmsKeyId"] == prod_plan.outputs["kms_key_arns"]["logs"]
    assert log_group.inputs["retentionInDays"] == 365


def test_the_parameter_group_sets_the_eviction_policy(prod_plan: Plan, direct_plan: Plan) -> None:
    (params,) = prod_plan.of_type(PARAMETER_GROUP)
    assert params.inputs["family"] == "valkey8"
    assert params.inputs["parameters"] == [{"name": "maxmemory-policy", "value": "volatile-lru"}]
    assert group(prod_plan).inputs["parameterGroupName"] == params.inputs["name"]
    (redis_params,) = direct_plan.of_type(PARAMETER_GROUP)
    assert redis_params.inputs["family"] == "redis7"
    assert redis_params.inputs["parameters"] == [{"name": "maxmemory-policy", "value": "allkeys-lru"}]
    assert group(direct_plan).inputs["engine"] == "redis"


@pytest.mark.parametrize(
    ("engine", "version", "family"),
    [
        ("valkey", "8.0", "valkey8"),
        ("valkey", "7.2", "valkey7"),
        ("redis", "7.1", "redis7"),
        ("redis", "6.2", "redis6.x"),
    ],
)
def test_parameter_group_family(engine: str, version: str, family: str) -> None:
    assert parameter_group_family(engine, version) == family


def test_in_the_isolated_subnets(prod_plan: Plan) -> None:
    (subnet_group,) = prod_plan.of_type(SUBNET_GROUP)
    isolated = [s.id for s in prod_plan.of_type(SUBNET) if s.inputs["tags"]["tier"] == "isolated"]
    assert sorted(subnet_group.inputs["subnetIds"]) == sorted(isolated)
    assert group(prod_plan).inputs["subnetGroupName"] == subnet_group.inputs["name"]


def test_6379_only_from_the_given_app_security_groups(direct_plan: Plan, prod_plan: Plan) -> None:
    security_group = by_name(direct_plan, "cache-sg")
    assert group(direct_plan).inputs["securityGroupIds"] == [security_group.id]
    rules = direct_plan.of_type(INGRESS)
    assert sorted(r.inputs["referencedSecurityGroupId"] for r in rules) == sorted(APP_SGS)
    for rule in rules:
        assert rule.inputs["securityGroupId"] == security_group.id
        assert rule.inputs["ipProtocol"] == "tcp"
        assert rule.inputs["fromPort"] == rule.inputs["toPort"] == 6379
        assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
    assert direct_plan.of_type(EGRESS) == []
    # In the real program, the API's and the worker's groups are the ones admitted.
    prod_sg = by_name(prod_plan, "cache-sg")
    app_groups = {by_name(prod_plan, f"app-{service}").id for service in ("api", "worker")}
    admitted = {
        r.inputs["referencedSecurityGroupId"]
        for r in prod_plan.of_type(INGRESS)
        if r.inputs["securityGroupId"] == prod_sg.id
    }
    assert admitted == app_groups


def test_tagged_for_aws_backup(prod_plan: Plan) -> None:
    assert group(prod_plan).inputs["tags"][BACKUP_TAG] == "platform-prod"


def test_the_stack_exports_endpoints_and_the_component_its_ids(prod_plan: Plan) -> None:
    outputs = group(prod_plan).outputs
    assert prod_plan.outputs["cache_primary_endpoint"] == outputs["primaryEndpointAddress"]
    assert prod_plan.outputs["cache_reader_endpoint"] == outputs["readerEndpointAddress"]
    assert prod_plan.outputs["cache_port"] == 6379
    component = by_name(prod_plan, "cache")
    assert component.outputs["replication_group_id"] == "platform-prod-cache"
    assert component.outputs["member_cluster_ids"] == [f"platform-prod-cache-00{n}" for n in (1, 2, 3)]


def test_a_replication_group_id_over_40_characters_is_an_error_not_a_refused_create() -> None:
    # ElastiCache takes 1 to 40 characters; `platform-customer-facing-production-eu-cache` has 44.
    long_stack = "customer-facing-production-eu"
    with pytest.raises(
        ValueError, match=r"'platform-customer-facing-production-eu-cache' is 44 characters; AWS allows 40"
    ):
        run_program(lambda: direct_cache(Naming(PROJECT, long_stack, "prod")), project=PROJECT, stack=long_stack)


def test_changing_the_eviction_policy_updates_the_parameter_group_in_place() -> None:
    # ElastiCache cannot change a parameter group's name, family or description (Terraform marks them
    # ForceNew): a change there replaces the group, and the replacement's create is refused while the
    # old group still holds the same name. Only the parameter itself may follow the config.
    replaced_on = ("name", "family", "description")
    groups = [
        plan_with(config_for("staging", cache={"evictionPolicy": policy}), stack="staging").of_type(PARAMETER_GROUP)
        for policy in ("volatile-lru", "allkeys-lfu")
    ]
    (before,), (after,) = groups
    assert {key: before.inputs[key] for key in replaced_on} == {key: after.inputs[key] for key in replaced_on}
    assert after.inputs["parameters"] == [{"name": "maxmemory-policy", "value": "allkeys-lfu"}]
