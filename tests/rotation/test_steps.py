"""The shared four-step handler against moto's Secrets Manager: what each step stages, and what it refuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from rotation.steps import VALUE_LENGTH, RotationError, rotate
from tests.rotation.conftest import SEED, RotatingSecrets, Rotation


class Recorder:
    """A service that records what the handler asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def set(self, current: str, pending: str, staged_at: datetime) -> None:
        self.calls.append(("set", current, pending, staged_at))

    def test(self, pending: str) -> None:
        self.calls.append(("test", pending))

    def finish(self, previous: str, current: str) -> None:
        self.calls.append(("finish", previous, current))


def run(rotation: Rotation, service: Recorder, *steps: str) -> list[str]:
    return [rotate(rotation.event(step), service, rotation.secrets) for step in steps]


def test_a_full_rotation_stages_a_new_value_and_makes_it_current(rotation: Rotation) -> None:
    service = Recorder()
    run(rotation, service, "createSecret")
    pending = rotation.value("AWSPENDING")
    assert pending != SEED and len(pending) == VALUE_LENGTH and pending.isalnum()
    run(rotation, service, "setSecret", "testSecret", "finishSecret")
    assert rotation.value("AWSCURRENT") == pending
    assert rotation.value("AWSPREVIOUS") == SEED
    assert [call[0] for call in service.calls] == ["set", "test", "finish"]
    assert service.calls[0][1:3] == (SEED, pending) and isinstance(service.calls[0][3], datetime)
    assert service.calls[1] == ("test", pending)
    assert service.calls[2] == ("finish", SEED, pending)


def test_a_retried_create_keeps_the_value_already_staged(rotation: Rotation) -> None:
    run(rotation, Recorder(), "createSecret")
    staged = rotation.value("AWSPENDING")
    run(rotation, Recorder(), "createSecret")
    assert rotation.value("AWSPENDING") == staged


def test_a_step_retried_after_finish_changes_nothing(rotation: Rotation) -> None:
    run(rotation, Recorder(), "createSecret", "setSecret", "testSecret", "finishSecret")
    service = Recorder()
    assert run(rotation, service, "finishSecret") == ["skipped"]
    assert service.calls == []


def test_a_secret_without_rotation_enabled_is_refused(secrets: Any) -> None:
    arn = secrets.create_secret(Name="not-rotating", SecretString=SEED)["ARN"]
    event = {"SecretId": arn, "ClientRequestToken": Rotation.token, "Step": "createSecret"}
    with pytest.raises(RotationError, match="rotation is not enabled"):
        rotate(event, Recorder(), secrets)


def test_a_version_that_is_not_pending_is_refused(secrets: Any) -> None:
    arn = secrets.create_secret(Name="odd-version", SecretString=SEED)["ARN"]
    current = next(iter(secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]))
    # The current version asked for again is a finished rotation; any other unknown version is refused.
    wrapped = RotatingSecrets(secrets, "f" * 32)
    event = {"SecretId": arn, "ClientRequestToken": "e" * 32, "Step": "setSecret"}
    with pytest.raises(RotationError, match="has no stage"):
        rotate(event, Recorder(), wrapped)
    assert rotate({**event, "ClientRequestToken": current}, Recorder(), wrapped) == "skipped"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("not an object", "expected an object"),
        ({"SecretId": "s", "Step": "createSecret"}, "missing or not a string: ClientRequestToken"),
        ({"SecretId": "s", "ClientRequestToken": "t", "Step": "rotate"}, "expected one of createSecret, setSecret"),
    ],
)
def test_a_malformed_event_is_refused_naming_the_field(event: Any, message: str) -> None:
    with pytest.raises(RotationError, match=message):
        rotate(event, Recorder(), secrets=object())
