"""The admin token's rotation, end to end with the API's reader of it: a rotation never locks the admin out."""

from __future__ import annotations

from typing import Any

import pytest

from app import aws as app_aws
from app.settings import Settings
from rotation.admin_token import AdminToken as AdminTokenRotation
from rotation.steps import STEPS, rotate
from tests.rotation.conftest import SEED, Rotation


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(app_aws.time, "monotonic", clock)
    return clock


def rotate_fully(rotation: Rotation) -> str:
    for step in STEPS:
        rotate(rotation.event(step), AdminTokenRotation(), rotation.secrets)
    return rotation.value("AWSCURRENT")


def test_the_api_accepts_the_new_token_right_after_a_rotation(rotation: Rotation, clock: Clock) -> None:
    reader = app_aws.AdminToken(Settings(admin_token="", admin_token_secret_id=rotation.arn))
    assert reader.matches(SEED)  # cached for 5 minutes from here
    new = rotate_fully(rotation)
    assert new != SEED
    clock.now += app_aws.ADMIN_TOKEN_REFETCH_SECONDS + 1
    # Well inside the 5-minute cache: the mismatch makes it read AWSCURRENT again.
    assert reader.matches(new)
    assert not reader.matches(SEED)


def test_wrong_tokens_read_the_secret_at_most_once_per_interval(
    rotation: Rotation, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = app_aws.AdminToken(Settings(admin_token="", admin_token_secret_id=rotation.arn))
    reads: list[str] = []
    real_client = app_aws.client

    def counting_client(service: str, settings: Settings) -> Any:
        reads.append(service)
        return real_client(service, settings)

    monkeypatch.setattr(app_aws, "client", counting_client)
    assert reader.matches(SEED)
    for _ in range(20):
        assert not reader.matches("wrong")
    assert len(reads) == 1
    clock.now += app_aws.ADMIN_TOKEN_REFETCH_SECONDS + 1
    assert not reader.matches("wrong")
    assert len(reads) == 2


def test_a_pending_admin_token_must_be_long_letters_and_digits() -> None:
    with pytest.raises(Exception, match="letters and digits"):
        AdminTokenRotation().test("short")
