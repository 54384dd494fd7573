"""The four steps of a Secrets Manager rotation (createSecret, setSecret, testSecret, finishSecret), shared by
every rotated secret; a secret's module supplies what its service does at each step.

The flow follows AWS's rotation function template: the new value is staged as AWSPENDING, the service is
made to accept it, tested, and only then does AWSPENDING become AWSCURRENT. Every step is idempotent:
Secrets Manager retries a failed step, and a retried step must finish what the first attempt began.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from datetime import datetime
from secrets import choice
from typing import Any, Protocol

import boto3
from botocore.config import Config

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# Letters and digits: valid as an ElastiCache AUTH token (16-128 printable, none of / " @ %) and as an HTTP
# header value; the length matches what the stack seeds (components/security.py).
VALUE_LENGTH = 64
ALPHABET = string.ascii_letters + string.digits
# Bounded calls: a Lambda that hangs on one API holds the rotation until its timeout.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 5})


class RotationError(Exception):
    """The rotation cannot go on; the message names the secret, the version and what is wrong."""


class Service(Protocol):
    """What one secret's service does during a rotation; the values are the secret's strings."""

    def set(self, current: str, pending: str, staged_at: datetime) -> None:
        """Make the service accept `pending` (keeping `current` valid where the service can hold both);
        `staged_at` is when createSecret staged `pending`, so a retried step can tell it was applied."""

    def test(self, pending: str) -> None:
        """Raise RotationError unless the service accepts `pending`."""

    def finish(self, previous: str, current: str) -> None:
        """After `current` became AWSCURRENT: retire `previous` where that is safe."""


@dataclass(frozen=True)
class Event:
    secret_id: str
    token: str
    step: str

    @classmethod
    def parse(cls, event: Any) -> Event:
        if not isinstance(event, dict):
            raise RotationError(f"event: expected an object with SecretId, ClientRequestToken, Step (got {event!r})")
        missing = [key for key in ("SecretId", "ClientRequestToken", "Step") if not isinstance(event.get(key), str)]
        if missing:
            raise RotationError(f"event: missing or not a string: {', '.join(missing)}")
        if event["Step"] not in STEPS:
            raise RotationError(f"event.Step: expected one of {', '.join(STEPS)} (got {event['Step']!r})")
        return cls(event["SecretId"], event["ClientRequestToken"], event["Step"])


def client(service: str) -> Any:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return boto3.client(service, region_name=region, config=CLIENT_CONFIG)  # type: ignore[call-overload]


def rotate(raw_event: Any, service: Service, secrets: Any | None = None) -> str:
    """Run one step of the rotation `raw_event` asks for; returns the step it ran, or `skipped`."""
    event = Event.parse(raw_event)
    secrets = secrets if secrets is not None else client("secretsmanager")
    metadata = secrets.describe_secret(SecretId=event.secret_id)
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"{event.secret_id}: rotation is not enabled")
    versions: dict[str, list[str]] = metadata.get("VersionIdsToStages", {})
    if event.token not in versions:
        raise RotationError(f"{event.secret_id}: version {event.token} has no stage to rotate")
    if CURRENT in versions[event.token]:
        return "skipped"  # a retried finishSecret after the move: nothing left to do
    if PENDING not in versions[event.token]:
        raise RotationError(f"{event.secret_id}: version {event.token} is not AWSPENDING")

    if event.step == "createSecret":
        _create(secrets, event)
    elif event.step == "setSecret":
        pending = _value(secrets, event.secret_id, PENDING, event.token)
        service.set(_value(secrets, event.secret_id, CURRENT), pending, _staged_at(secrets, event))
    elif event.step == "testSecret":
        service.test(_value(secrets, event.secret_id, PENDING, event.token))
    else:
        previous = _value(secrets, event.secret_id, CURRENT)
        current_version = next(version for version, stages in versions.items() if CURRENT in stages)
        secrets.update_secret_version_stage(
            SecretId=event.secret_id,
            VersionStage=CURRENT,
            MoveToVersionId=event.token,
            RemoveFromVersionId=current_version,
        )
        service.finish(previous, _value(secrets, event.secret_id, CURRENT))
    return event.step


def _create(secrets: Any, event: Event) -> None:
    try:
        secrets.get_secret_value(SecretId=event.secret_id, VersionId=event.token, VersionStage=PENDING)
        return  # a retried createSecret: the pending value exists already
    except secrets.exceptions.ResourceNotFoundException:
        pass
    # Generated here (the `secrets` module's CSPRNG) rather than by GetRandomPassword: one permission fewer.
    value = "".join(choice(ALPHABET) for _ in range(VALUE_LENGTH))
    secrets.put_secret_value(
        SecretId=event.secret_id, ClientRequestToken=event.token, SecretString=value, VersionStages=[PENDING]
    )


def _staged_at(secrets: Any, event: Event) -> datetime:
    # ListSecretVersionIds has no boto3 paginator: follow NextToken by hand.
    request: dict[str, str] = {"SecretId": event.secret_id}
    while True:
        page = secrets.list_secret_version_ids(**request)
        for version in page.get("Versions", []):
            if version.get("VersionId") == event.token:
                created: datetime = version["CreatedDate"]
                return created
        if not page.get("NextToken"):
            raise RotationError(f"{event.secret_id}: version {event.token} is not listed")
        request["NextToken"] = page["NextToken"]


def _value(secrets: Any, secret_id: str, stage: str, version: str | None = None) -> str:
    request = {"SecretId": secret_id, "VersionStage": stage, **({"VersionId": version} if version else {})}
    value = secrets.get_secret_value(**request).get("SecretString")
    if not isinstance(value, str) or not value:
        raise RotationError(f"{secret_id}: the {stage} version holds no string")
    return value


def setting(name: str) -> str:
    """A setting from the function's environment; a missing one stops the rotation before any change."""
    value = os.environ.get(name, "")
    if not value:
        raise RotationError(f"environment: {name} is not set (the stack sets it on the function)")
    return value
