"""The images the program builds: a context that holds what each Dockerfile copies, one stage per service.

Shared by tests/components/test_image_tags.py: where the builder looks, and what Docker would send from there.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from platformctl.plan import Plan, PlannedResource
from tests.support import config_for, plan_with

IMAGE = "awsx:ecr:Image"


@pytest.fixture(scope="module")
def prod() -> Plan:
    return plan_with(config_for("prod"))


def images(plan: Plan) -> dict[str, PlannedResource]:
    found = {r.name.removesuffix("-image"): r for r in plan.resources if r.type == IMAGE}
    assert set(found) == {"api", "worker"}
    return found


def context_and_dockerfile(image: PlannedResource) -> tuple[Path, Path]:
    """Where the builder looks: it resolves the paths it is given against its working directory, which is the
    program's (both run in the project directory)."""
    return Path.cwd() / image.inputs["context"], Path.cwd() / image.inputs["dockerfile"]


def files_docker_sends(context: Path, dockerfile: Path) -> set[str]:
    """The context after `.dockerignore`, by Docker's own matching rules (docker-py), files only."""
    relative_dockerfile = str(dockerfile.relative_to(context))
    ignore_file = next(
        (p for p in (Path(f"{dockerfile}.dockerignore"), context / ".dockerignore") if p.is_file()), None
    )
    lines = ignore_file.read_text().splitlines() if ignore_file else []
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    included = exclude_paths(str(context), patterns, dockerfile=relative_dockerfile)
    return {path for path in included if (context / path).is_file()}


def copy_sources(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction line, source) for every COPY/ADD that reads the build context (not `--from` a stage)."""
    sources = []
    for instruction in DockerfileParser(path=str(dockerfile)).structure:
        if instruction["instruction"] not in {"COPY", "ADD"}:
            continue
        flags = [w for w in shlex.split(instruction["value"]) if w.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            continue
        arguments = instruction["value"].removeprefix(" ".join(flags)).strip()
        words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
        sources += [(instruction["content"].strip(), source) for source in words[:-1] if "://" not in source]
    return sources


def stages(dockerfile: Path) -> list[str]:
    named = []
    for instruction in DockerfileParser(path=str(dockerfile)).structure:
        words = instruction["value"].split()
        if instruction["instruction"] == "FROM" and len(words) >= 3 and words[-2].lower() == "as":
            named.append(words[-1])
    return named


def test_every_file_a_dockerfile_copies_is_in_the_context_the_program_passes(prod: Plan) -> None:
    for service, image in images(prod).items():
        context, dockerfile = context_and_dockerfile(image)
        assert dockerfile.is_file(), f"{service}: no Dockerfile at {image.inputs['dockerfile']}"
        sent = files_docker_sends(context, dockerfile)
        sources = copy_sources(dockerfile)
        assert sources, f"{service}: {dockerfile} copies nothing from its context"
        for line, source in sources:
            pattern = source.strip("/").removeprefix("./")
            found = [f for f in sent if fnmatch.fnmatch(f, pattern) or f.startswith(f"{pattern}/")]
            assert found, f"{service}: `{line}` needs {source!r}, which is not in context {image.inputs['context']!r}"


def test_the_context_leaves_out_what_the_images_do_not_need(prod: Plan) -> None:
    context, dockerfile = context_and_dockerfile(images(prod)["api"])
    sent = files_docker_sends(context, dockerfile)
    for unwanted in (".venv/", ".git/", "tests/", "components/", "__pycache__/", ".pytest_cache/", "plan-"):
        assert not [f for f in sent if f.startswith(unwanted) or f"/{unwanted}" in f], unwanted


def test_each_image_builds_its_own_dockerfile_stage(prod: Plan) -> None:
    targets = {}
    for service, image in images(prod).items():
        _, dockerfile = context_and_dockerfile(image)
        target = image.inputs.get("target")
        assert target in stages(dockerfile), f"{service}: target {target!r} is not a stage of {dockerfile}"
        targets[service] = target
    assert targets == {"api": "api", "worker": "worker"}
