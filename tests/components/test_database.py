"""The database layer: Aurora PostgreSQL and RDS Proxy, as the program registers them."""

from __future__ import annotations

import json
from typing import Any

import pulumi_aws as aws
import pytest

from app import contract
from components.database import Database, DatabaseArgs, parameter_group_family
from components.iam import Account
from components.naming import BACKUP_TAG, LogPolicy, Naming
from components.network import Placement
from platformctl.plan import Plan, PlannedResource, run_program
from stack_config.schema import DatabaseConfig
from tests.support import PROJECT, by_name

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
PROXY = "aws:rds/proxy:Proxy"
PROXY_ENDPOINT = "aws:rds/proxyEndpoint:ProxyEndpoint"
PROXY_TARGET = "aws:rds/proxyTarget:ProxyTarget"
PROXY_POOL = "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SUBNET = "aws:ec2/subnet:Subnet"
APP_SGS = ["sg-0app0api000000001", "sg-0app0worker000002"]
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
DATA_KEY = "arn:aws:kms:us-east-1:123456789012:key/data-key"


def build_direct(**overrides: Any) -> Plan:
    """The component alone, given app security groups (the services layer does not exist yet)."""

    def program() -> None:
        naming = Naming(PROJECT, "test", "prod")
        config = DatabaseConfig.model_validate({"instanceClass": "db.r7g.large", "readerCount": 2, **overrides})
        Database(
            "database",
            DatabaseArgs(
                config=config,
                naming=naming,
                account=Account.lookup("us-east-1"),
                placement=Placement("vpc-0test", ["subnet-a", "subnet-b", "subnet-c"], ZONES, APP_SGS),
                data_key_arn=DATA_KEY,
                logs=LogPolicy(30, "arn:aws:kms:us-east-1:123456789012:key/logs-key"),
            ),
        )

    return run_program(program, project=PROJECT, stack="test")


@pytest.fixture(scope="module")
def direct_plan() -> Plan:
    return build_direct()


@pytest.fixture(scope="module")
def no_reader_plan() -> Plan:
    return build_direct(readerCount=0, monitoringIntervalSeconds=0, engineVersion="16.6")


def cluster(plan: Plan) -> PlannedResource:
    (found,) = plan.of_type(CLUSTER)
    return found


def instances(plan: Plan) -> list[PlannedResource]:
    return sorted(plan.of_type(INSTANCE), key=lambda i: i.inputs["promotionTier"])


def data_key(plan: Plan) -> str:
    return str(plan.outputs["kms_key_arns"]["data"])


def isolated_subnet_ids(plan: Plan) -> list[str]:
    return [s.id or "" for s in plan.of_type(SUBNET) if s.inputs["tags"]["tier"] == "isolated"]


def ingress_sources(plan: Plan, security_group: PlannedResource) -> list[str]:
    rules = [r for r in plan.of_type(INGRESS) if r.inputs["securityGroupId"] == security_group.id]
    for rule in rules:
        assert rule.inputs["ipProtocol"] == "tcp"
        assert rule.inputs["fromPort"] == rule.inputs["toPort"] == 5432
        assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
    return sorted(rule.inputs["referencedSecurityGroupId"] for rule in rules)


@pytest.mark.parametrize(
    ("stack", "instance_class", "zones"),
    [
        ("prod_plan", "db.r7g.large", ["us-east-1a", "us-east-1b", "us-east-1c"]),
        ("staging_plan", "db.serverless", ["us-east-1a", "us-east-1b"]),
    ],
)
def test_a_writer_in_the_first_az_and_readers_across_the_others(
    stack: str, instance_class: str, zones: list[str], request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    writer, *readers = instances(plan)
    assert len(readers) == len(zones) - 1  # prod 2 readers, staging 1
    assert [i.inputs["availabilityZone"] for i in (writer, *readers)] == zones
    assert [i.inputs["promotionTier"] for i in (writer, *readers)] == list(range(len(zones)))
    assert all(i.inputs["instanceClass"] == instance_class for i in (writer, *readers))
    assert all(i.inputs["clusterIdentifier"] == cluster(plan).id for i in (writer, *readers))
    assert all(i.inputs["publiclyAccessible"] is False for i in (writer, *readers))
    # Readers are created after the writer, so the instance in the first AZ is the one that writes.
    assert all(writer.urn in reader.dependencies for reader in readers)


def test_serverless_v2_scaling_only_in_staging(prod_plan: Plan, staging_plan: Plan) -> None:
    assert "serverlessv2ScalingConfiguration" not in cluster(prod_plan).inputs
    assert cluster(staging_plan).inputs["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 4}
    assert cluster(staging_plan).inputs["engineMode"] == "provisioned"


def test_engine_is_pinned_aurora_postgresql_17_in_the_isolated_subnets(prod_plan: Plan) -> None:
    inputs = cluster(prod_plan).inputs
    assert (inputs["engine"], inputs["engineVersion"]) == ("aurora-postgresql", "17.4")
    assert inputs["allowMajorVersionUpgrade"] is False
    (subnet_group,) = prod_plan.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert sorted(subnet_group.inputs["subnetIds"]) == sorted(isolated_subnet_ids(prod_plan))
    assert inputs["dbSubnetGroupName"] == subnet_group.inputs["name"]


def test_storage_and_master_secret_encrypted_with_the_data_key_and_iam_auth_on(prod_plan: Plan) -> None:
    inputs = cluster(prod_plan).inputs
    assert inputs["storageEncrypted"] is True
    assert inputs["kmsKeyId"] == data_key(prod_plan)
    assert inputs["manageMasterUserPassword"] is True
    assert inputs["masterUserSecretKmsKeyId"] == data_key(prod_plan)
    assert "masterPassword" not in inputs
    assert inputs["iamDatabaseAuthenticationEnabled"] is True


@pytest.mark.parametrize(("stack", "days"), [("prod_plan", 7), ("staging_plan", 1)])
def test_backups_kept_per_stack_within_their_windows(stack: str, days: int, request: pytest.FixtureRequest) -> None:
    inputs = cluster(request.getfixturevalue(stack)).inputs
    assert inputs["backupRetentionPeriod"] == days
    assert inputs["preferredBackupWindow"] == "03:00-04:00"
    assert inputs["preferredMaintenanceWindow"] == "sun:04:30-sun:05:30"
    assert inputs["copyTagsToSnapshot"] is True


def test_deletion_protection_and_final_snapshot_in_prod_only(prod_plan: Plan, staging_plan: Plan) -> None:
    prod, staging = cluster(prod_plan).inputs, cluster(staging_plan).inputs
    assert prod["deletionProtection"] is True
    assert prod["skipFinalSnapshot"] is False
    assert prod["finalSnapshotIdentifier"] == "platform-prod-aurora-final"
    assert staging["deletionProtection"] is False
    assert staging["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in staging


def test_the_cluster_is_tagged_for_aws_backup(prod_plan: Plan) -> None:
    assert cluster(prod_plan).inputs["tags"][BACKUP_TAG] == "platform-prod"


def test_performance_insights_encrypted_and_enhanced_monitoring_on_every_instance(prod_plan: Plan) -> None:
    role = by_name(prod_plan, "database-monitoring-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    attachment = by_name(prod_plan, "database-monitoring-policy")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    assert attachment.inputs["role"] == role.inputs.get("name", role.id)
    for instance in instances(prod_plan):
        assert instance.inputs["performanceInsightsEnabled"] is True
        assert instance.inputs["performanceInsightsKmsKeyId"] == data_key(prod_plan)
        assert instance.inputs["performanceInsightsRetentionPeriod"] == 7
        assert instance.inputs["monitoringInterval"] == 60
        assert instance.inputs["monitoringRoleArn"] == role.outputs["arn"]
        assert instance.inputs["autoMinorVersionUpgrade"] is True


def test_no_monitoring_role_when_enhanced_monitoring_is_off(no_reader_plan: Plan) -> None:
    assert not [r for r in no_reader_plan.resources if r.name == "database-monitoring-role"]
    assert all(i.inputs["monitoringInterval"] == 0 for i in no_reader_plan.of_type(INSTANCE))
    assert all("monitoringRoleArn" not in i.inputs for i in no_reader_plan.of_type(INSTANCE))


def test_postgresql_logs_go_to_an_encrypted_log_group_with_retention(prod_plan: Plan) -> None:
    inputs = cluster(prod_plan).inputs
    assert inputs["enabledCloudwatchLogsExports"] == ["postgresql"]
    log_group = by_name(prod_plan, "database-postgresql-logs")
    assert log_group.inputs["name"] == "/aws/rds/cluster/platform-prod-aurora/postgresql"
    assert log_group.inputs["kmsKeyId"] == prod_plan.outputs["kms_key_arns"]["logs"]
    assert log_group.inputs["retentionInDays"] == 365
    # Created before the cluster, so RDS does not create it unencrypted first.
    assert log_group.urn in cluster(prod_plan).dependencies


def test_the_parameter_group_forces_tls_logs_slow_statements_and_loads_pg_stat_statements(prod_plan: Plan) -> None:
    (group,) = prod_plan.of_type(PARAMETER_GROUP)
    assert group.inputs["family"] == "aurora-postgresql17"
    assert cluster(prod_plan).inputs["dbClusterParameterGroupName"] == group.inputs["name"]
    parameters = {p["name"]: p for p in group.inputs["parameters"]}
    assert parameters["rds.force_ssl"]["value"] == "1"
    assert "pg_stat_statements" in parameters["shared_preload_libraries"]["value"].split(",")
    assert parameters["shared_preload_libraries"]["applyMethod"] == "pending-reboot"  # a static parameter
    assert parameters["log_min_duration_statement"]["value"] == "500"
    assert parameters["work_mem"]["value"] == str(8 * 1024)
    # Aurora sizes memory and connections from the instance itself; the group leaves them alone.
    assert not {"shared_buffers", "max_connections"} & set(parameters)


def test_schema_and_role_changes_are_logged_in_the_exported_postgresql_log(prod_plan: Plan) -> None:
    (group,) = prod_plan.of_type(PARAMETER_GROUP)
    parameters = {p["name"]: p for p in group.inputs["parameters"]}
    # ddl: CREATE, ALTER, DROP, GRANT, REVOKE and role changes; a dynamic parameter, applied without a reboot.
    assert parameters["log_statement"] == {"name": "log_statement", "value": "ddl", "applyMethod": "immediate"}
    assert cluster(prod_plan).inputs["enabledCloudwatchLogsExports"] == ["postgresql"]


def test_the_parameter_group_family_follows_the_engine_major(no_reader_plan: Plan) -> None:
    assert parameter_group_family("17.4") == "aurora-postgresql17"
    (group,) = no_reader_plan.of_type(PARAMETER_GROUP)
    assert group.inputs["family"] == "aurora-postgresql16"


def test_the_proxy_requires_tls_and_iam_end_to_end_with_no_password_to_go_stale(prod_plan: Plan) -> None:
    (proxy,) = prod_plan.of_type(PROXY)
    assert proxy.inputs["requireTls"] is True
    assert proxy.inputs["engineFamily"] == "POSTGRESQL"
    # Clients sign in with IAM tokens and the proxy signs in to Aurora with IAM as the same user: no secret
    # whose rotation (every 7 days for the RDS-managed master secret) could lock the tasks out.
    assert proxy.inputs["defaultAuthScheme"] == "IAM_AUTH"
    assert proxy.outputs["defaultAuthScheme"] == "IAM_AUTH"
    assert "auths" not in proxy.inputs
    assert cluster(prod_plan).inputs["iamDatabaseAuthenticationEnabled"] is True
    assert sorted(proxy.inputs["vpcSubnetIds"]) == sorted(isolated_subnet_ids(prod_plan))
    assert prod_plan.outputs["database_secret_arn"] == cluster(prod_plan).outputs["masterUserSecrets"][0]["secretArn"]


def test_the_proxy_role_may_sign_in_to_the_cluster_as_the_app_user_only(prod_plan: Plan) -> None:
    (proxy,) = prod_plan.of_type(PROXY)
    role = by_name(prod_plan, "database-proxy-role")
    assert proxy.inputs["roleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "rds.amazonaws.com"}
    policy = by_name(prod_plan, "database-proxy-policy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    granted = {(tuple(s["Action"]), tuple(s["Resource"])) for s in statements}
    resource_id = cluster(prod_plan).outputs["clusterResourceId"]
    assert resource_id.startswith("cluster-")
    assert granted == {
        (("rds-db:connect",), (f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{resource_id}/{contract.DB_APP_USER}",))
    }
    # The proxy starts with its permission in place.
    assert policy.urn in proxy.dependencies


def test_the_proxy_pools_onto_the_cluster_with_a_read_only_endpoint(prod_plan: Plan) -> None:
    (proxy,) = prod_plan.of_type(PROXY)
    (pool,) = prod_plan.of_type(PROXY_POOL)
    assert pool.inputs["dbProxyName"] == proxy.inputs["name"]
    assert pool.inputs["connectionPoolConfig"]["maxConnectionsPercent"] == 90
    assert pool.inputs["connectionPoolConfig"]["maxIdleConnectionsPercent"] == 50
    (target,) = prod_plan.of_type(PROXY_TARGET)
    assert target.inputs["dbClusterIdentifier"] == "platform-prod-aurora"
    assert target.inputs["targetGroupName"] == "default"
    (read_only,) = prod_plan.of_type(PROXY_ENDPOINT)
    assert read_only.inputs["targetRole"] == "READ_ONLY"
    assert read_only.inputs["dbProxyName"] == proxy.inputs["name"]
    assert prod_plan.outputs["database_proxy_reader_endpoint"] == read_only.outputs["endpoint"]


def test_no_read_only_proxy_endpoint_without_readers(no_reader_plan: Plan) -> None:
    assert len(no_reader_plan.of_type(INSTANCE)) == 1
    assert no_reader_plan.of_type(PROXY_ENDPOINT) == []


def test_postgres_is_reachable_only_from_the_given_app_security_groups(direct_plan: Plan) -> None:
    cluster_sg = by_name(direct_plan, "database-sg")
    proxy_sg = by_name(direct_plan, "database-proxy-sg")
    assert ingress_sources(direct_plan, proxy_sg) == sorted(APP_SGS)
    assert ingress_sources(direct_plan, cluster_sg) == sorted([*APP_SGS, proxy_sg.id or ""])
    (egress,) = direct_plan.of_type(EGRESS)  # the proxy reaches Aurora and nothing else
    assert egress.inputs["securityGroupId"] == proxy_sg.id
    assert egress.inputs["referencedSecurityGroupId"] == cluster_sg.id
    assert egress.inputs["fromPort"] == egress.inputs["toPort"] == 5432
    assert "ingress" not in cluster_sg.inputs and "egress" not in cluster_sg.inputs


def test_in_the_program_the_api_and_worker_reach_postgres_and_nothing_else(prod_plan: Plan) -> None:
    cluster_sg, proxy_sg = by_name(prod_plan, "database-sg"), by_name(prod_plan, "database-proxy-sg")
    app_groups = sorted(by_name(prod_plan, f"app-{service}").id for service in ("api", "worker"))
    assert cluster(prod_plan).inputs["vpcSecurityGroupIds"] == [cluster_sg.id]
    assert sorted(ingress_sources(prod_plan, cluster_sg)) == sorted([proxy_sg.id, *app_groups])
    assert sorted(ingress_sources(prod_plan, proxy_sg)) == app_groups


def test_the_stack_exports_the_endpoints_and_the_component_its_ids(prod_plan: Plan) -> None:
    outputs = cluster(prod_plan).outputs
    assert prod_plan.outputs["database_writer_endpoint"] == outputs["endpoint"]
    assert prod_plan.outputs["database_reader_endpoint"] == outputs["readerEndpoint"]
    (proxy,) = prod_plan.of_type(PROXY)
    assert prod_plan.outputs["database_proxy_endpoint"] == proxy.outputs["endpoint"]
    assert prod_plan.outputs["database_security_group_id"] == by_name(prod_plan, "database-sg").id
    component = by_name(prod_plan, "database")
    assert component.outputs["cluster_id"] == "platform-prod-aurora"
    assert component.outputs["instance_ids"] == [
        "platform-prod-aurora-1",
        "platform-prod-aurora-2",
        "platform-prod-aurora-3",
    ]
    assert component.outputs["port"] == 5432


def proxy_connect_arn(plan: Plan) -> str:
    (proxy,) = plan.of_type(PROXY)
    proxy_id = proxy.outputs["arn"].rsplit(":", 1)[1]
    assert proxy_id.startswith("prx-")
    return f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{proxy_id}/{contract.DB_APP_USER}"


def test_clients_sign_in_to_the_proxy_with_iam_as_the_app_user_not_the_master(prod_plan: Plan) -> None:
    assert by_name(prod_plan, "database").outputs["proxy_connect_arn"] == proxy_connect_arn(prod_plan)
    assert cluster(prod_plan).inputs["masterUsername"] != contract.DB_APP_USER


def task_policy(plan: Plan, service: str) -> list[dict[str, Any]]:
    return list(json.loads(by_name(plan, f"{service}-task-policy").inputs["policy"])["Statement"])


def containers(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    definitions = json.loads(by_name(plan, f"{service}-task").inputs["containerDefinitions"])
    return {c["name"]: c for c in definitions}


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


@pytest.mark.parametrize("stack", ["prod_plan", "staging_plan"])
def test_task_roles_may_connect_through_the_proxy_as_the_app_user_and_no_other(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    for service in ("api", "worker"):
        connect = [s for s in task_policy(plan, service) if any(a.startswith("rds-db:") for a in s["Action"])]
        assert [(s["Action"], s["Resource"]) for s in connect] == [(["rds-db:connect"], [proxy_connect_arn(plan)])]
    # No other role may sign in to the database: the proxy's own role signs in to the cluster, as the app user.
    granting = {
        resource.name
        for resource in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if "rds-db:" in resource.inputs["policy"]
    }
    assert granting == {"api-task-policy", "worker-task-policy", "database-proxy-policy"}


@pytest.mark.parametrize("service", ["api", "worker"])
def test_app_containers_sign_in_with_iam_over_tls_and_get_no_database_password(prod_plan: Plan, service: str) -> None:
    secret_arn = prod_plan.outputs["database_secret_arn"]
    for name, container in containers(prod_plan, service).items():
        if name == "otel-collector":
            continue
        assert contract.DB_PASSWORD not in {s["name"] for s in container.get("secrets", [])}, name
        assert not any(s["valueFrom"].startswith(secret_arn) for s in container.get("secrets", [])), name
        env = environment(container)
        assert env[contract.DB_LOGIN] == contract.DB_LOGIN_IAM, name
        assert env[contract.DB_SSLMODE] in ("require", "verify-ca", "verify-full"), name
        assert env[contract.DB_USER] == contract.DB_APP_USER, name
        assert env[contract.DB_WRITER_HOST] == prod_plan.outputs["database_proxy_endpoint"], name
    # ECS itself no longer reads the master secret to start a task.
    execution = json.loads(by_name(prod_plan, f"{service}-execution-secrets").inputs["policy"])["Statement"]
    assert not any(secret_arn in s["Resource"] for s in execution)


def test_only_the_api_migrates_as_the_master_reading_its_password_when_it_connects(prod_plan: Plan) -> None:
    secret_arn = prod_plan.outputs["database_secret_arn"]
    init = environment(containers(prod_plan, "api")["init"])
    assert init[contract.DB_MIGRATION_HOST] == cluster(prod_plan).outputs["endpoint"]
    assert init[contract.DB_MIGRATION_MASTER_ARN] == secret_arn
    reads_secret = [s for s in task_policy(prod_plan, "api") if secret_arn in s["Resource"]]
    assert [(s["Action"], s["Resource"]) for s in reads_secret] == [(["secretsmanager:GetSecretValue"], [secret_arn])]
    assert not any(secret_arn in s["Resource"] for s in task_policy(prod_plan, "worker"))
    assert contract.DB_MIGRATION_MASTER_ARN not in environment(containers(prod_plan, "worker")["worker"])
    # The API's tasks reach Aurora's writer directly (the proxy admits IAM users only); the worker's do not.
    cluster_sg = by_name(prod_plan, "database-sg").id
    egress = {r.name: r.inputs for r in prod_plan.of_type(EGRESS)}
    assert egress["api-to-aurora-writer"]["referencedSecurityGroupId"] == cluster_sg
    assert egress["api-to-aurora-writer"]["fromPort"] == egress["api-to-aurora-writer"]["toPort"] == 5432
    worker_sg = by_name(prod_plan, "app-worker").id
    assert not [
        r
        for r in egress.values()
        if r["securityGroupId"] == worker_sg and r.get("referencedSecurityGroupId") == cluster_sg
    ]


@pytest.mark.parametrize(("auto_minor", "ignored"), [(True, ["engineVersion"]), (False, [])])
def test_a_minor_upgrade_aws_applied_is_never_sent_back_as_a_downgrade(
    auto_minor: bool, ignored: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RDS refuses `17.x -> 17.4` ("Cannot upgrade aurora-postgresql from 17.x to 17.4"): once it upgrades the
    minor on its own, the pinned version must not be re-sent."""
    seen: dict[str, object] = {}
    for resource_class in (aws.rds.Cluster, aws.rds.ClusterInstance):
        original = resource_class.__init__

        def capturing(self: Any, resource_name: str, *args: Any, _original: Any = original, **kwargs: Any) -> None:
            seen[resource_name] = kwargs["opts"].ignore_changes
            _original(self, resource_name, *args, **kwargs)

        monkeypatch.setattr(resource_class, "__init__", capturing)
    plan = build_direct(autoMinorVersionUpgrade=auto_minor)
    assert all(i.inputs["autoMinorVersionUpgrade"] is auto_minor for i in plan.of_type(INSTANCE))
    assert seen == {
        name: ignored for name in ("database-cluster", "database-writer", "database-reader-1", "database-reader-2")
    }
