"""The pull request workflow's own scripts, run locally: on two commits of a fixture repository, and
against a fake GitHub API that shows one comment per stack, edited in place on the next push."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from platformctl.pr_comment import marker
from tests.support import REPO

SCRIPTS = REPO / ".github" / "scripts"
WORKFLOW = REPO / ".github" / "workflows" / "pull-request.yml"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def fixture_repo(tmp_path: Path) -> Path:
    """This repository's program in a fresh git repository; a second commit changes staging's network and usage."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, repo / name)
    for package in ("components", "stack_config", "app", "policy", "rotation"):
        (repo / package).symlink_to(REPO / package)
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "base")
    stack_file = repo / "Pulumi.staging.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["platform:network"] = {"vpcCidr": "10.77.0.0/16"}  # every subnet is replaced
    document["config"]["cost:usage"] = {"natGbPerMonth": 2000}
    stack_file.write_text(yaml.safe_dump(document))
    git(repo, "commit", "--quiet", "-am", "head: move staging's VPC, more NAT traffic")
    return repo


def test_the_report_script_comments_plan_diff_policy_cost_and_diagram(fixture_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    completed = subprocess.run(
        [str(SCRIPTS / "pr-report.sh"), "HEAD~1", "HEAD", "staging", str(out)],
        cwd=fixture_repo,
        env={**os.environ, "PLATFORMCTL": str(Path(sys.executable).parent / "platformctl"), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    comment = (out / "comment-staging.md").read_text()
    head_commit = git(fixture_repo, "rev-parse", "HEAD").strip()
    assert comment.startswith(marker("staging") + "\n")
    assert f"## Offline plan of `staging` at `{head_commit[:12]}`" in comment
    counts = re.search(r"(\d+) to create, (\d+) to update, (\d+) to replace, (\d+) to delete", comment)
    assert counts and int(counts.group(3)) >= 6, comment  # six subnets at least
    assert re.search(r"`cidrBlock`: `\"10\.\d+\.\d+\.\d+/\d+\"` → `\"10\.77\.", comment)
    assert "(forces replacement)" in comment and "deleted or replaced" in comment
    assert "### Policy" in comment and ("advisory" in comment or "No violations" in comment)
    # 1900 GB more through the NAT gateway at $0.045
    assert "| network |" in comment and "+$85.50 |" in comment
    assert "```mermaid\nflowchart LR" in comment
    assert "[secret]" not in comment or "placeholder" not in comment
    assert not git(fixture_repo, "worktree", "list").strip().count("\n"), "the script leaves no worktree behind"


class FakeGitHub(BaseHTTPRequestHandler):
    comments: ClassVar[list[dict[str, Any]]] = []

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        return body

    def do_GET(self) -> None:
        assert self.headers["Authorization"] == "Bearer test-token"
        page = int(re.search(r"[?&]page=(\d+)", self.path).group(1))  # type: ignore[union-attr]
        self._reply(200, self.comments[(page - 1) * 100 : page * 100])

    def do_POST(self) -> None:
        comment = {"id": 1000 + len(self.comments), "body": self._body()["body"]}
        self.comments.append(comment)
        self._reply(201, comment)

    def do_PATCH(self) -> None:
        comment_id = int(self.path.rsplit("/", 1)[1])
        comment = next(c for c in self.comments if c["id"] == comment_id)
        comment["body"] = self._body()["body"]
        self._reply(200, comment)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def github() -> Iterator[str]:
    FakeGitHub.comments = [{"id": n, "body": f"someone else's comment {n}"} for n in range(150)]  # two pages
    server = HTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def upsert(api: str, stack: str, body: str, tmp_path: Path) -> str:
    body_file = tmp_path / f"{stack}.md"
    body_file.write_text(body)
    completed = subprocess.run(
        [
            *(sys.executable, str(SCRIPTS / "upsert_comment.py"), "--repo", "o/r", "--pr", "7"),
            *("--marker", marker(stack), "--body-file", str(body_file)),
        ],
        env={**os.environ, "GITHUB_TOKEN": "test-token", "GITHUB_API_URL": api},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_each_push_edits_the_stacks_one_comment(github: str, tmp_path: Path) -> None:
    assert upsert(github, "staging", f"{marker('staging')}\nfirst push", tmp_path).startswith("comment created")
    assert upsert(github, "prod", f"{marker('prod')}\nfirst push", tmp_path).startswith("comment created")
    assert upsert(github, "staging", f"{marker('staging')}\nsecond push", tmp_path).startswith("comment updated")
    ours = [c for c in FakeGitHub.comments if "platformctl-report" in c["body"]]
    assert [c["body"].splitlines()[1] for c in ours] == ["second push", "first push"]
    assert len(FakeGitHub.comments) == 152


def test_the_workflow_runs_these_scripts_with_write_access_only_to_comments() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    report = workflow["jobs"]["offline-report"]
    assert report["permissions"] == {"contents": "read", "pull-requests": "write"}
    runs = "\n".join(step.get("run", "") for step in report["steps"])
    assert ".github/scripts/pr-report.sh" in runs and ".github/scripts/upsert_comment.py" in runs
    assert report["steps"][0]["with"]["fetch-depth"] == 0
    assert "offline-report" in workflow["jobs"]["preview"]["needs"]
