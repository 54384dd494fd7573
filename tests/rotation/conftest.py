"""Fixtures: moto's Secrets Manager with a secret whose rotation is enabled, and helpers to drive the steps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rotation import cache_token, origin_secret

REGION = "us-east-1"
SEED = "S" * 64


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture
def secrets(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


class RotatingSecrets:
    """moto's Secrets Manager client as the rotation Lambda sees it mid-rotation.

    moto runs no rotation Lambda, so it cannot show what Secrets Manager shows the function: the secret's
    rotation enabled, and the new version's id already staged AWSPENDING before createSecret writes a
    value. `describe_secret` adds those two facts; every other call is moto's own.
    """

    def __init__(self, client: Any, token: str) -> None:
        self._client, self._token = client, token

    def describe_secret(self, **request: Any) -> dict[str, Any]:
        metadata: dict[str, Any] = self._client.describe_secret(**request)
        versions = metadata.setdefault("VersionIdsToStages", {})
        versions.setdefault(self._token, ["AWSPENDING"])
        return {**metadata, "RotationEnabled": True}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Rotation:
    """A rotation in progress: the secret (seeded), the pending version's token and the event for each step."""

    token = "0123456789abcdef0123456789abcdef"

    def __init__(self, client: Any, name: str) -> None:
        self.arn = client.create_secret(Name=name, SecretString=SEED)["ARN"]
        self.secrets = RotatingSecrets(client, self.token)
        self._client = client

    def event(self, step: str) -> dict[str, str]:
        return {"SecretId": self.arn, "ClientRequestToken": self.token, "Step": step}

    def value(self, stage: str) -> str:
        value: str = self._client.get_secret_value(SecretId=self.arn, VersionStage=stage)["SecretString"]
        return value

    def stages(self) -> list[str]:
        stages: list[str] = self.secrets.describe_secret(SecretId=self.arn)["VersionIdsToStages"][self.token]
        return stages


@pytest.fixture
def rotation(secrets: Any) -> Rotation:
    return Rotation(secrets, "platform-test-secret")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The waiters poll without sleeping: a stub answers at once."""
    monkeypatch.setattr(cache_token, "WAIT_DELAY_SECONDS", 0)
    monkeypatch.setattr(origin_secret, "WAIT_DELAY_SECONDS", 0)
