"""`rds-proxy-iam-auth`: RDS proxies take IAM tokens from clients, never a password a rotation makes stale."""

from __future__ import annotations

import pulumi_aws as aws
import pytest

from platformctl.plan import Plan, run_program
from platformctl.policy import PolicyPackProcess, PolicyReport, check_plan
from tests.policy.conftest import report_for, stack_config_file

RULE = "rds-proxy-iam-auth"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-db-AbCdEf"


def messages(report: PolicyReport) -> list[str]:
    return [v.message for v in report.violations if v.rule == RULE]


def proxy_report(pack: PolicyPackProcess, **proxy: object) -> list[str]:
    def program() -> None:
        aws.rds.Proxy(
            "proxy",
            engine_family="POSTGRESQL",
            role_arn="arn:aws:iam::123456789012:role/proxy",
            vpc_subnet_ids=["subnet-a", "subnet-b"],
            require_tls=True,
            **proxy,  # type: ignore[arg-type]
        )

    return messages(check_plan(run_program(program, project="platform", stack="test"), pack=pack, pack_config={}))


def test_a_proxy_checking_client_passwords_is_a_violation(insecure_report: PolicyReport) -> None:
    assert any(
        "db-proxy (Proxy): auth 0 lets clients sign in with a password (iamAuth DISABLED)" in m
        for m in messages(insecure_report)
    )


def test_client_iam_on_every_auth_block_or_end_to_end_iam_passes(pack: PolicyPackProcess) -> None:
    required = aws.rds.ProxyAuthArgs(auth_scheme="SECRETS", secret_arn=SECRET, iam_auth="REQUIRED")
    disabled = aws.rds.ProxyAuthArgs(auth_scheme="SECRETS", secret_arn=SECRET, iam_auth="DISABLED")
    assert proxy_report(pack, default_auth_scheme="IAM_AUTH") == []
    assert proxy_report(pack, auths=[required]) == []
    # One password door is enough to let a stale password (and its outage) back in.
    assert [m.split(": ", 1)[1] for m in proxy_report(pack, auths=[required, disabled])] == [
        "auth 1 lets clients sign in with a password (iamAuth DISABLED)"
    ]


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_the_programs_proxy_requires_iam(stack: str, pack: PolicyPackProcess, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    assert messages(report_for(pack, f"program-{stack}", plan, stack_config_file(stack))) == []
