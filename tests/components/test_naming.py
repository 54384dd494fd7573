"""Names and tags: every physical name is one AWS accepts for the resource it names."""

from __future__ import annotations

import pytest

from components.naming import Naming
from tests.support import config_for, plan_with


@pytest.mark.parametrize("stack", ["Prod", "prod_eu", "prod.eu", "prod-", "prod--eu", "1prod", ""])
def test_a_stack_name_aws_would_refuse_in_resource_names_is_an_error(stack: str) -> None:
    # S3 buckets and ECR repositories refuse uppercase, `_` and `.`; RDS and ElastiCache refuse `--`,
    # a trailing hyphen and a leading digit. Pulumi allows all of them in a stack name.
    with pytest.raises(ValueError, match=rf"stack name {stack!r} cannot prefix AWS resource names"):
        Naming("platform", stack, "prod")


def test_the_program_refuses_an_uppercase_stack_before_registering_anything() -> None:
    with pytest.raises(ValueError, match=r"stack name 'Staging' cannot prefix AWS resource names"):
        plan_with(config_for("staging"), stack="Staging")


def test_a_name_longer_than_the_aws_limit_is_an_error_naming_the_limit() -> None:
    naming = Naming("platform", "prod", "prod")
    assert naming.name("cache", max_length=19) == "platform-prod-cache"
    with pytest.raises(ValueError, match=r"'platform-prod-cache' is 19 characters; AWS allows 18"):
        naming.name("cache", max_length=18)
