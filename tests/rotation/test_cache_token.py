"""The cache AUTH token's rotation against a stubbed ElastiCache (moto does not model AUTH token updates)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from rotation.cache_token import CacheToken
from rotation.steps import RotationError

GROUP = "platform-prod-cache"
STAGED = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
CURRENT, PENDING = "C" * 64, "P" * 64


@pytest.fixture
def elasticache() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("elasticache", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def group(status: str = "available", *, transit: bool = True, modified: datetime | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "ReplicationGroupId": GROUP,
        "Status": status,
        "TransitEncryptionEnabled": transit,
        "AuthTokenEnabled": True,
    }
    if modified is not None:
        found["AuthTokenLastModifiedDate"] = modified
    return {"ReplicationGroups": [found]}


def describe(stubber: Stubber, **state: Any) -> None:
    stubber.add_response("describe_replication_groups", group(**state), {"ReplicationGroupId": GROUP})


def test_set_adds_the_new_token_beside_the_old_one_and_waits_until_applied(elasticache: Any) -> None:
    client, stubber = elasticache
    describe(stubber, modified=STAGED - timedelta(days=30))
    stubber.add_response(
        "modify_replication_group",
        {},
        # ROTATE, never SET: tasks that started with the old token keep connecting.
        {
            "ReplicationGroupId": GROUP,
            "AuthToken": PENDING,
            "AuthTokenUpdateStrategy": "ROTATE",
            "ApplyImmediately": True,
        },
    )
    describe(stubber, status="modifying")
    describe(stubber, modified=STAGED + timedelta(minutes=1))
    CacheToken(client, GROUP).set(CURRENT, PENDING, STAGED)


def test_a_retried_set_does_not_rotate_the_same_token_twice(elasticache: Any) -> None:
    client, stubber = elasticache
    describe(stubber, modified=STAGED + timedelta(minutes=1))
    describe(stubber, modified=STAGED + timedelta(minutes=1))  # the waiter: no modify_replication_group between
    CacheToken(client, GROUP).set(CURRENT, PENDING, STAGED)


def test_set_refuses_a_group_without_in_transit_encryption(elasticache: Any) -> None:
    client, stubber = elasticache
    describe(stubber, transit=False)
    with pytest.raises(RotationError, match="in-transit encryption"):
        CacheToken(client, GROUP).set(CURRENT, PENDING, STAGED)


@pytest.mark.parametrize("token", ["short-token", "a" * 129, "x" * 20 + "@", "x" * 20 + "/", "x" * 20 + '"'])
def test_set_refuses_a_token_elasticache_would_reject(elasticache: Any, token: str) -> None:
    client, _ = elasticache
    with pytest.raises(RotationError, match="16-128 printable"):
        CacheToken(client, GROUP).set(CURRENT, token, STAGED)


def test_test_fails_while_the_group_is_still_modifying(elasticache: Any) -> None:
    client, stubber = elasticache
    describe(stubber, status="modifying")
    with pytest.raises(RotationError, match="status modifying"):
        CacheToken(client, GROUP).test(PENDING)
