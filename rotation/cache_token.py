"""The cache's AUTH token: ElastiCache `ModifyReplicationGroup` with `AuthTokenUpdateStrategy=ROTATE`.

ROTATE adds the new token and keeps the one in use valid, so tasks that read REDIS_AUTH_TOKEN when they
started keep connecting, and tasks started after the rotation use the new one. The strategy is never
moved on to SET (which would drop the old token at once and cut off every running task that still
holds it): the old token stays valid until the next rotation replaces it. AUTH needs in-transit
encryption, and the token 16-128 printable characters without / " @ or %.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rotation.steps import RotationError, client, rotate, setting

TOKEN = re.compile(r"[!-~]{16,128}")
FORBIDDEN = set('/"@%')
GROUP_ID = "REPLICATION_GROUP_ID"
# ElastiCache applies a token change in minutes; the waiter polls within the function's 15-minute limit.
WAIT_DELAY_SECONDS, WAIT_MAX_ATTEMPTS = 15, 50


class CacheToken:
    def __init__(self, elasticache: Any, group_id: str) -> None:
        self._elasticache, self._group_id = elasticache, group_id

    def set(self, current: str, pending: str, staged_at: datetime) -> None:
        if not TOKEN.fullmatch(pending) or FORBIDDEN & set(pending):
            raise RotationError('cache token: the pending value must be 16-128 printable characters without / " @ %')
        group = self._group()
        if not group.get("TransitEncryptionEnabled") or not group.get("AuthTokenEnabled"):
            raise RotationError(f"cache {self._group_id}: AUTH needs in-transit encryption and an AUTH token already")
        modified = group.get("AuthTokenLastModifiedDate")
        # A retried step: ROTATE twice with one token would push the token the tasks hold out of the pair.
        if group.get("Status") == "available" and not (isinstance(modified, datetime) and modified >= staged_at):
            self._elasticache.modify_replication_group(
                ReplicationGroupId=self._group_id,
                AuthToken=pending,
                AuthTokenUpdateStrategy="ROTATE",
                ApplyImmediately=True,
            )
        self._elasticache.get_waiter("replication_group_available").wait(
            ReplicationGroupId=self._group_id,
            WaiterConfig={"Delay": WAIT_DELAY_SECONDS, "MaxAttempts": WAIT_MAX_ATTEMPTS},
        )

    def test(self, pending: str) -> None:
        # The token itself can only be tried from inside the VPC: the function stays on the control plane
        # and checks that ElastiCache applied a token change and is serving.
        group = self._group()
        if group.get("Status") != "available" or not group.get("AuthTokenEnabled"):
            raise RotationError(f"cache {self._group_id}: status {group.get('Status')}, AUTH not confirmed")

    def finish(self, previous: str, current: str) -> None:
        """ROTATE left both tokens valid; the next rotation's ROTATE replaces `previous`."""

    def _group(self) -> dict[str, Any]:
        groups = self._elasticache.describe_replication_groups(ReplicationGroupId=self._group_id)
        found: list[dict[str, Any]] = groups.get("ReplicationGroups", [])
        if not found:
            raise RotationError(f"cache {self._group_id}: no such replication group")
        return found[0]


def handler(event: Any, context: Any) -> str:
    return rotate(event, CacheToken(client("elasticache"), setting(GROUP_ID)))
