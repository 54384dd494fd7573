"""The CloudFront origin secret: the header value CloudFront sends and the ALB's forwarding rule requires.

setSecret makes the rule accept both values, then moves CloudFront's origin header to the new one and
waits until every edge location runs that configuration; finishSecret, after the new value became
AWSCURRENT, makes the rule accept only it. No request is refused at any point: an edge still sending
the old value is admitted until the distribution reports Deployed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rotation.steps import RotationError, client, rotate, setting

RULE_ARN, ROUTED_PATHS = "LISTENER_RULE_ARN", "ROUTED_PATHS"
DISTRIBUTION_ID, ORIGIN_ID, HEADER_NAME = "DISTRIBUTION_ID", "ORIGIN_ID", "HEADER_NAME"
# A distribution deploys in minutes; the waiter polls within the function's 15-minute limit.
WAIT_DELAY_SECONDS, WAIT_MAX_ATTEMPTS = 30, 28


class OriginSecret:
    def __init__(
        self,
        elbv2: Any,
        cloudfront: Any,
        *,
        rule_arn: str,
        routed_paths: list[str],
        distribution_id: str,
        origin_id: str,
        header: str,
    ) -> None:
        self._elbv2, self._cloudfront = elbv2, cloudfront
        self._rule_arn, self._routed_paths = rule_arn, routed_paths
        self._distribution_id, self._origin_id, self._header = distribution_id, origin_id, header

    def set(self, current: str, pending: str, staged_at: datetime) -> None:
        # The ALB first: once CloudFront sends the new value, the rule must already admit it.
        self._accept(current, pending)
        config, etag = self._distribution_config()
        if self._sent_value(config) != pending:
            self._origin_headers(config)[self._header] = pending
            self._write(config, etag)
        self._cloudfront.get_waiter("distribution_deployed").wait(
            Id=self._distribution_id, WaiterConfig={"Delay": WAIT_DELAY_SECONDS, "MaxAttempts": WAIT_MAX_ATTEMPTS}
        )

    def test(self, pending: str) -> None:
        config, _ = self._distribution_config()
        if self._sent_value(config) != pending:
            raise RotationError(f"distribution {self._distribution_id}: origin {self._origin_id} does not send it")
        status = self._cloudfront.get_distribution(Id=self._distribution_id)["Distribution"]["Status"]
        if status != "Deployed":
            raise RotationError(f"distribution {self._distribution_id}: {status}, not yet Deployed everywhere")

    def finish(self, previous: str, current: str) -> None:
        self._accept(current)

    def _accept(self, *values: str) -> None:
        # ModifyRule replaces every condition: the path patterns go back as the stack declares them.
        self._elbv2.modify_rule(
            RuleArn=self._rule_arn,
            Conditions=[
                {
                    "Field": "http-header",
                    "HttpHeaderConfig": {"HttpHeaderName": self._header, "Values": list(dict.fromkeys(values))},
                },
                {"Field": "path-pattern", "PathPatternConfig": {"Values": self._routed_paths}},
            ],
        )

    def _distribution_config(self) -> tuple[dict[str, Any], str]:
        response = self._cloudfront.get_distribution_config(Id=self._distribution_id)
        return response["DistributionConfig"], response["ETag"]

    def _origin(self, config: dict[str, Any]) -> dict[str, Any]:
        for origin in config.get("Origins", {}).get("Items", []):
            if origin.get("Id") == self._origin_id:
                found: dict[str, Any] = origin
                return found
        raise RotationError(f"distribution {self._distribution_id}: no origin {self._origin_id}")

    def _origin_headers(self, config: dict[str, Any]) -> _Headers:
        return _Headers(self._origin(config))

    def _sent_value(self, config: dict[str, Any]) -> str | None:
        return self._origin_headers(config).get(self._header)

    def _write(self, config: dict[str, Any], etag: str) -> None:
        self._cloudfront.update_distribution(Id=self._distribution_id, IfMatch=etag, DistributionConfig=config)


class _Headers:
    """An origin's `CustomHeaders` ({Quantity, Items: [{HeaderName, HeaderValue}]}) as a small mapping."""

    def __init__(self, origin: dict[str, Any]) -> None:
        self._block = origin.setdefault("CustomHeaders", {"Quantity": 0})

    def get(self, name: str) -> str | None:
        for item in self._block.get("Items", []):
            if item.get("HeaderName", "").lower() == name.lower():
                value: str = item.get("HeaderValue", "")
                return value
        return None

    def __setitem__(self, name: str, value: str) -> None:
        items = [i for i in self._block.get("Items", []) if i.get("HeaderName", "").lower() != name.lower()]
        items.append({"HeaderName": name, "HeaderValue": value})
        self._block["Items"], self._block["Quantity"] = items, len(items)


def handler(event: Any, context: Any) -> str:
    paths = json.loads(setting(ROUTED_PATHS))
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise RotationError(f"environment: {ROUTED_PATHS} must be a JSON list of path patterns")
    service = OriginSecret(
        client("elbv2"),
        client("cloudfront"),
        rule_arn=setting(RULE_ARN),
        routed_paths=paths,
        distribution_id=setting(DISTRIBUTION_ID),
        origin_id=setting(ORIGIN_ID),
        header=setting(HEADER_NAME),
    )
    return rotate(event, service)
