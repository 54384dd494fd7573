"""Lambda functions: a supported runtime, traced, logging to a log group the stack keeps, concurrency capped."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import Report, Resource, Rule

FUNCTION = "aws:lambda/function:Function"
# Runtimes AWS has not scheduled for deprecation (Lambda runtimes page); 3.12 and 3.13 run the rotation code.
SUPPORTED_RUNTIMES = ["python3.12", "python3.13", "nodejs20.x", "nodejs22.x", "java21", "provided.al2023"]


@Rule(
    name="lambda-function-hardened",
    area="identity",
    kind="security",
    severity=Severity.MEDIUM,
    summary="Lambda functions run a supported runtime, trace with X-Ray (Active), log to a log group the stack "
    "creates (loggingConfig.logGroup: its retention and key, not an unencrypted group Lambda makes on first "
    "write) and cap their concurrency (reservedConcurrentExecutions).",
    seed="seed 000 security objectives (hardened compute, audit trail), seed 004 observability",
    checks="Checkov CKV_AWS_50 (X-Ray), CKV_AWS_115 (concurrency), CKV_AWS_363 (deprecated runtime)",
    remediation="On aws.lambda_.Function set runtime to a supported one, tracing_config mode 'Active', "
    "logging_config.log_group to an aws.cloudwatch.LogGroup with retention and the logs key, and "
    "reserved_concurrent_executions (components/rotation.py does for the rotation Lambdas).",
    resource_types=(FUNCTION,),
    config={"runtimes": {"type": "array", "items": {"type": "string"}, "default": SUPPORTED_RUNTIMES}},
)
def lambda_hardened(resource: Resource, config: dict[str, Any], report: Report) -> None:
    runtime = resource.get("runtime")
    if runtime not in config["runtimes"]:
        report(f"{resource.label}: runtime {runtime} is not one of {', '.join(config['runtimes'])}")
    tracing = resource.get("tracingConfig")
    if not hasattr(tracing, "get") or tracing.get("mode") != "Active":
        report(f"{resource.label}: X-Ray tracing is not Active")
    logging = resource.get("loggingConfig")
    if not hasattr(logging, "get") or not logging.get("logGroup"):
        report(f"{resource.label}: no loggingConfig.logGroup (Lambda would create an unencrypted group)")
    if resource.get("reservedConcurrentExecutions") is None:
        report(f"{resource.label}: no reservedConcurrentExecutions")
