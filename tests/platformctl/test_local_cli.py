"""`platformctl local`: a second `up` refuses without touching the running one's state; settings can be raised."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from platformctl.cli import cli
from platformctl.local import LocalConfig, LocalError, LocalRuntime, read_state

runner = CliRunner()


def running_state(state_dir: Path) -> Path:
    """The state file of a runtime that is up: its processes alive (this test's own pid stands in)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "state.json"
    state = {"pids": {"api": os.getpid()}, "urls": {"api": "http://127.0.0.1:8080"}, "env": {}, "logs": "x"}
    path.write_text(json.dumps(state))
    return path


def test_a_second_up_refuses_and_leaves_the_running_state(tmp_path: Path) -> None:
    state_file = running_state(tmp_path / "state")
    with socket.socket() as busy:  # the running runtime's API holds its port
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = LocalConfig(api_port=busy.getsockname()[1], state_dir=tmp_path / "state")
        with pytest.raises(LocalError):
            LocalRuntime(config, echo=lambda _: None).up()
    assert state_file.exists()
    assert read_state(tmp_path / "state") is not None


def test_stop_of_a_runtime_that_never_started_keeps_the_state(tmp_path: Path) -> None:
    state_file = running_state(tmp_path / "state")
    LocalRuntime(LocalConfig(state_dir=tmp_path / "state"), echo=lambda _: None).stop()
    assert state_file.exists()


def test_local_up_rejects_an_unknown_or_malformed_setting() -> None:
    unknown = runner.invoke(cli, ["local", "up", "--setting", "NO_SUCH_SETTING=1"])
    assert unknown.exit_code == 2
    assert "NO_SUCH_SETTING" in unknown.output
    malformed = runner.invoke(cli, ["local", "up", "--setting", "RATE_LIMIT_PER_MINUTE"])
    assert malformed.exit_code == 2
    assert "NAME=VALUE" in malformed.output


def test_the_rate_limit_setting_reaches_the_apps_environment(tmp_path: Path) -> None:
    config = LocalConfig(state_dir=tmp_path, extra={"RATE_LIMIT_PER_MINUTE": "100000"})
    assert LocalRuntime(config, echo=lambda _: None).settings_env()["RATE_LIMIT_PER_MINUTE"] == "100000"
