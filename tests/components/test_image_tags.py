"""Image tags follow the content: the ECR repositories are IMMUTABLE, so a code change must push a new tag, and
what `.dockerignore` leaves out must not."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from components.ecs.container import content_image_tag
from platformctl.plan import Plan
from tests.components.test_image_build import files_docker_sends, images
from tests.support import REPO, config_for, plan_with

# What Docker and ECR accept as a tag.
TAG_RULE = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


@pytest.fixture(scope="module")
def prod() -> Plan:
    return plan_with(config_for("prod"))


def test_image_tags_are_the_content_tags_valid_for_ecr_and_distinct_per_service(prod: Plan) -> None:
    tags = {}
    for service, image in images(prod).items():
        tag = image.inputs.get("imageTag")
        assert tag is not None, f"{service}: no image tag: awsx derives one from the build arguments, not the files"
        assert re.fullmatch(TAG_RULE, tag), tag
        inputs = image.inputs
        build_inputs = {key: inputs[key] for key in ("context", "dockerfile", "target", "platform")}
        assert tag == content_image_tag(service, REPO, "app/Dockerfile", build_inputs)
        tags[service] = tag
    # awsx names its child build resource after the tag: equal tags would collide in one stack.
    assert len(set(tags.values())) == 2


@pytest.fixture
def context_copy(tmp_path: Path) -> Path:
    """A copy of what the images are built from: the files Docker would send, and the ignore file."""
    copy = tmp_path / "context"
    for relative in files_docker_sends(REPO, REPO / "app" / "Dockerfile"):
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    return copy


def test_a_code_change_gives_a_new_tag_and_an_ignored_file_does_not(context_copy: Path) -> None:
    def tag(target: str = "api") -> str:
        return content_image_tag("api", context_copy, "app/Dockerfile", {"target": target, "platform": "linux/amd64"})

    before = tag()
    assert tag() == before, "the tag is a function of the content"

    (context_copy / "tests").mkdir()
    (context_copy / "tests" / "test_new.py").write_text("def test_x(): pass\n")
    (context_copy / ".venv" / "lib").mkdir(parents=True)
    (context_copy / ".venv" / "lib" / "site.py").write_text("x = 1\n")
    (context_copy / "app" / "__pycache__").mkdir(exist_ok=True)
    (context_copy / "app" / "__pycache__" / "worker.cpython-311.pyc").write_bytes(b"\0compiled")
    (context_copy / "README.md").write_text("docs change\n")
    assert tag() == before, "files .dockerignore leaves out must not change the tag"

    worker = context_copy / "app" / "worker" / "consumer.py"
    worker.write_text(worker.read_text() + "\n# a code change\n")
    changed = tag()
    assert changed != before

    (context_copy / "app" / "new_module.py").write_text("VALUE = 1\n")
    assert tag() not in {before, changed}, "a new file is a change"

    dockerfile = context_copy / "app" / "Dockerfile"
    after_code = tag()
    dockerfile.write_text(dockerfile.read_text() + "\n# a Dockerfile change\n")
    assert tag() != after_code
    assert tag("worker") != tag("api"), "another stage is another image"
