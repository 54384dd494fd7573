"""Issue 17's logging and audit rules, on small programs: each case a rule must catch, and each way to pass it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from platformctl.plan import Plan, run_program
from platformctl.policy import PolicyPackProcess, check_plan
from tests.policy.conftest import report_for, stack_config_file
from tests.policy.fixtures import s3_access_log_grant

RULES = (
    "aurora-audit-logging",
    "s3-access-logging",
    "s3-acls-disabled",
    "ecs-exec-encrypted",
    "cloudfront-access-logs",
)


def violations(
    pack: PolicyPackProcess, rule: str, program: Callable[[], None], config: dict[str, Any] | None = None
) -> list[str]:
    plan = run_program(program, project="platform", stack="test")
    report = check_plan(plan, pack=pack, pack_config=config or {})
    return [v.message for v in report.violations if v.rule == rule]


# --- aurora-audit-logging ----------------------------------------------------------------------------


def aurora(*parameters: tuple[str, str], engine: str = "aurora-postgresql", group: bool = True) -> Callable[[], None]:
    def program() -> None:
        params = (
            aws.rds.ClusterParameterGroup(
                "params",
                family="aurora-postgresql17" if "postgres" in engine else "aurora-mysql8.0",
                parameters=[aws.rds.ClusterParameterGroupParameterArgs(name=n, value=v) for n, v in parameters],
            )
            if group
            else None
        )
        aws.rds.Cluster(
            "db",
            engine=engine,
            db_cluster_parameter_group_name=params.name if params else None,
            master_username="app",
        )

    return program


@pytest.mark.parametrize(
    "parameters",
    [
        (("log_statement", "ddl"),),
        (("log_statement", "all"),),
        (("shared_preload_libraries", "pg_stat_statements,pgaudit"), ("pgaudit.log", "ddl, role")),
        (("shared_preload_libraries", "pgaudit"), ("pgaudit.log", "all")),
    ],
)
def test_log_statement_ddl_or_loaded_pgaudit_with_ddl_and_role_passes(
    pack: PolicyPackProcess, parameters: tuple[tuple[str, str], ...]
) -> None:
    assert violations(pack, "aurora-audit-logging", aurora(*parameters)) == []


@pytest.mark.parametrize(
    "parameters",
    [
        (),
        (("log_statement", "none"),),
        # pgaudit's settings do nothing unless the library is loaded.
        (("pgaudit.log", "ddl,role"),),
        # Role changes are a class of their own in pgaudit.
        (("shared_preload_libraries", "pgaudit"), ("pgaudit.log", "ddl")),
    ],
)
def test_a_parameter_group_logging_no_ddl_is_a_violation(
    pack: PolicyPackProcess, parameters: tuple[tuple[str, str], ...]
) -> None:
    assert violations(pack, "aurora-audit-logging", aurora(*parameters)) == [
        "params (ClusterParameterGroup): neither log_statement ddl nor pgaudit ddl,role"
    ]


def test_the_default_parameter_group_is_a_violation_and_mysql_is_not_judged(pack: PolicyPackProcess) -> None:
    assert violations(pack, "aurora-audit-logging", aurora(group=False)) == [
        "db (Cluster): the default parameter group logs no DDL (log_statement none)"
    ]
    assert violations(pack, "aurora-audit-logging", aurora(engine="aurora-mysql")) == []


# --- s3-access-logging and s3-acls-disabled ------------------------------------------------------------


def logged_bucket(
    *,
    prefix: str = "s3-access/assets/",
    conditions: tuple[str, ...] = ("SourceAccount", "SourceArn"),
    into_itself: bool = False,
    ownership: str = "BucketOwnerEnforced",
) -> Callable[[], None]:
    """An assets bucket logging into a log bucket (or itself) whose policy admits S3's log delivery."""

    def program() -> None:
        assets = aws.s3.Bucket("assets")
        logs = assets if into_itself else aws.s3.Bucket("logs")
        grant = s3_access_log_grant(logs, assets, scoped_by=conditions)
        aws.s3.BucketPolicy(
            "logs-policy",
            bucket=logs.id,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [grant]}),
        )
        aws.s3.BucketOwnershipControls(
            "logs-ownership",
            bucket=logs.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership=ownership),
        )
        aws.s3.BucketLogging("assets-logging", bucket=assets.id, target_bucket=logs.id, target_prefix=prefix)

    return program


def test_a_bucket_logging_to_the_log_bucket_with_a_scoped_grant_passes(pack: PolicyPackProcess) -> None:
    # The log bucket itself is the target, not a source: it is not asked to log into a third bucket.
    assert violations(pack, "s3-access-logging", logged_bucket()) == []


def test_a_bucket_without_server_access_logging_is_a_violation(pack: PolicyPackProcess) -> None:
    def program() -> None:
        aws.s3.Bucket("assets")

    assert violations(pack, "s3-access-logging", program) == ["assets (Bucket): no server access logging"]


def test_a_grant_without_source_arn_or_a_log_without_prefix_is_a_violation(pack: PolicyPackProcess) -> None:
    assert violations(pack, "s3-access-logging", logged_bucket(conditions=("SourceAccount",))) == [
        "logs (Bucket): its policy does not admit logging.s3.amazonaws.com scoped by aws:SourceAccount and "
        "aws:SourceArn"
    ]
    assert violations(pack, "s3-access-logging", logged_bucket(prefix="")) == [
        "assets (Bucket): server access logs have no prefix of their own"
    ]


def test_a_bucket_logging_into_itself_is_a_violation(pack: PolicyPackProcess) -> None:
    assert violations(pack, "s3-access-logging", logged_bucket(into_itself=True)) == [
        "assets (Bucket): logs into itself (each log delivery would log again)"
    ]


def test_acls_enabled_by_ownership_or_a_bucket_acl_are_violations(pack: PolicyPackProcess) -> None:
    assert violations(pack, "s3-acls-disabled", logged_bucket()) == []
    assert violations(pack, "s3-acls-disabled", logged_bucket(ownership="BucketOwnerPreferred")) == [
        "logs (Bucket): object ownership BucketOwnerPreferred keeps ACLs enabled"
    ]

    def with_acl() -> None:
        bucket = aws.s3.Bucket("logs")
        aws.s3.BucketAcl("logs-acl", bucket=bucket.id, acl="log-delivery-write")

    assert violations(pack, "s3-acls-disabled", with_acl) == ["logs (Bucket): logs-acl (BucketAcl) sets an ACL"]


# --- ecs-exec-encrypted ---------------------------------------------------------------------------------


def cluster(*, key: bool = True, shared: bool = False) -> Callable[[], None]:
    def program() -> None:
        exec_key = aws.kms.Key("exec-key", enable_key_rotation=True) if key else None
        if exec_key is not None and shared:
            aws.cloudwatch.LogGroup("app-logs", kms_key_id=exec_key.arn, retention_in_days=365)
        aws.ecs.Cluster(
            "ecs",
            configuration=aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                    kms_key_id=exec_key.arn if exec_key else None, logging="DEFAULT"
                )
            ),
        )

    return program


def test_exec_sessions_need_a_key_of_their_own(pack: PolicyPackProcess) -> None:
    assert violations(pack, "ecs-exec-encrypted", cluster()) == []
    assert violations(pack, "ecs-exec-encrypted", cluster(key=False)) == [
        "ecs (Cluster): ECS Exec sessions use no KMS key of their own"
    ]
    assert violations(pack, "ecs-exec-encrypted", cluster(shared=True)) == [
        "ecs (Cluster): the exec key also encrypts app-logs (LogGroup)"
    ]


# --- cloudfront-access-logs -----------------------------------------------------------------------------


def test_a_delivery_source_without_a_delivery_is_a_violation(pack: PolicyPackProcess) -> None:
    def program() -> None:
        distribution = aws.cloudfront.Distribution(
            "cdn",
            enabled=True,
            origins=[aws.cloudfront.DistributionOriginArgs(origin_id="o", domain_name="example.com")],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id="o",
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=["GET", "HEAD"],
                cached_methods=["GET", "HEAD"],
            ),
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(cloudfront_default_certificate=True),
        )
        aws.cloudwatch.LogDeliverySource("cdn-logs", resource_arn=distribution.arn, log_type="ACCESS_LOGS")

    assert violations(pack, "cloudfront-access-logs", program) == [
        "cdn-logs (LogDeliverySource): no log delivery from this source"
    ]


# --- log-retention-set with each stack's config ---------------------------------------------------------


def log_group(days: int) -> Callable[[], None]:
    def program() -> None:
        aws.cloudwatch.LogGroup("flow-logs", retention_in_days=days)

    return program


def test_prod_keeps_logs_a_year_and_staging_keeps_its_cheaper_setting(pack: PolicyPackProcess) -> None:
    prod, staging = stack_config_file("prod"), stack_config_file("staging")
    assert violations(pack, "log-retention-set", log_group(90), prod) == [
        "flow-logs (LogGroup): retentionInDays 90 < 365"
    ]
    assert violations(pack, "log-retention-set", log_group(365), prod) == []
    assert violations(pack, "log-retention-set", log_group(14), staging) == []


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_the_programs_pass_the_logging_and_audit_rules(
    stack: str, pack: PolicyPackProcess, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    report = report_for(pack, f"program-{stack}", plan, stack_config_file(stack))
    assert [v.message for v in report.violations if v.rule in (*RULES, "log-retention-set")] == []


def test_every_prod_log_group_keeps_a_year(prod_plan: Plan) -> None:
    groups = {g.name: g.inputs["retentionInDays"] for g in prod_plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    expected = {
        "network-flow-logs",
        "edge-waf-logs",
        "compute-exec-logs",
        "database-postgresql-logs",
        "cache-slow-log",
        "observability-api-logs",
        "observability-worker-logs",
    }
    assert expected <= set(groups)
    assert {name: days for name, days in groups.items() if days < 365} == {}
