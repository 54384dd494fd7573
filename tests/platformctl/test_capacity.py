"""`platformctl capacity`: tasks needed at the stated peak, worked by hand on a small stack, and the warning
when autoscaling's maximum cannot carry it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from platformctl.capacity import CapacityError, load_route_cpu, model, stack_config
from platformctl.cli import cli

runner = CliRunner()

# A staging stack over 2 AZs (floor 2 x 1 = 2 tasks) with round numbers:
#   API: 0.5 vCPU at a 50 % target = 250 CPU ms per second per task; 1200 requests per task per minute = 20/s.
#   worker: 0.25 vCPU at 50 % = 125 CPU ms per second per task.
SMALL_STACK = {
    "platform:environment": "staging",
    "platform:availabilityZones": 2,
    "platform:edge": {"domain": "small.example.com", "hostedZone": "example.com"},
    "platform:services": {
        "minTasksPerAz": 1,
        "api": {
            "cpu": 512,
            "memory": 1024,
            "minCount": 2,
            "desiredCount": 2,
            "maxCount": 6,
            "autoscaling": {"cpuTargetPercent": 50, "requestsPerTarget": 1200},
        },
        "worker": {
            "cpu": 256,
            "memory": 512,
            "minCount": 2,
            "desiredCount": 2,
            "maxCount": 4,
            "autoscaling": {"cpuTargetPercent": 50},
        },
    },
    "platform:capacity": {"peakRequestsPerSecond": 100, "mix": {"browse": 50, "session": 30, "checkout": 20}},
    "platform:observability": {"alertEmails": ["alerts@example.com"]},
    "platform:tags": {"owner": "team", "cost-center": "cc-1"},
}
# browse 2 ms, session 4 ms, checkout 10 ms per request on the API; the worker 600 ms over 100 checkout requests.
ROUTE_CPU = {
    "measured_at": "2026-12-06T07:00Z",
    "machine": "test",
    "classes": {
        "browse": {"api_cpu_ms_per_request": 2, "requests": 100},
        "session": {"api_cpu_ms_per_request": 4, "requests": 100},
        "checkout": {"api_cpu_ms_per_request": 10, "requests": 100, "worker_cpu_ms": 600},
    },
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: platform\nruntime: python\n")
    (tmp_path / "Pulumi.small.yaml").write_text(yaml.safe_dump({"config": SMALL_STACK}))
    (tmp_path / "route_cpu.json").write_text(json.dumps(ROUTE_CPU))
    return tmp_path


def capacity(project: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        cli, ["capacity", *args, "--project-dir", str(project), "--route-cpu", str(project / "route_cpu.json")]
    )
    return result.exit_code, result.output


def test_the_tasks_needed_worked_by_hand(project: Path) -> None:
    result = model(stack_config(project, "small"), "small", load_route_cpu(project / "route_cpu.json"))
    api, worker = result.services
    # API: 0.5 x 2 + 0.3 x 4 + 0.2 x 10 = 4.2 ms a request; 100/s x 4.2 = 420 ms/s over 250 per task -> 2 tasks.
    # The request-count policy: 100/s over 20 per task -> 5 tasks, which decides.
    assert api.cpu_ms_per_request == pytest.approx(4.2)
    assert (api.tasks_for_cpu, api.tasks_for_requests, api.az_floor) == (2, 5, 2)
    assert (api.needed, api.bound_by, api.fits) == (5, "requests", True)
    # Six tasks carry min(250 / 4.2, 20) = 20 requests a second each: 120/s.
    assert api.max_carries_rps == pytest.approx(120)
    # Worker: 20 checkout requests/s x 6 ms = 120 ms/s over 125 per task -> 1 task; the AZ floor asks for 2.
    assert worker.demand_per_second == pytest.approx(20)
    assert (worker.tasks_for_cpu, worker.tasks_for_requests, worker.needed, worker.bound_by) == (1, None, 2, "az floor")
    # Four tasks carry 4 x 125 / 6 checkout requests/s, which are a fifth of all requests: 416.7/s.
    assert worker.max_carries_rps == pytest.approx(416.7)
    assert result.warnings == []


def test_a_load_exactly_at_the_target_needs_no_extra_task(project: Path) -> None:
    # 120/s over 20 per task is exactly 6 tasks, not 7 (float division must not round up a whole number).
    result = model(stack_config(project, "small"), "small", load_route_cpu(project / "route_cpu.json"), 120)
    assert result.services[0].needed == 6
    assert result.warnings == []


def test_the_warning_when_max_cannot_carry_the_peak(project: Path) -> None:
    code, output = capacity(project, "small", "--peak-rps", "150")
    # 150/s over 20 per task = 7.5 -> 8 tasks, above maxCount 6.
    assert code == 0, output
    assert "WARN capacity: small api needs 8 tasks at 150 req/s (bound by requests)" in output
    assert "maxCount 6, which carries 120 req/s" in output
    assert "status=WARN" in output
    strict, strict_output = capacity(project, "small", "--peak-rps", "150", "--strict")
    assert strict == 1, strict_output


def test_the_peak_of_the_config_fits_and_json_says_so(project: Path) -> None:
    code, output = capacity(project, "small", "--json", "--strict")
    assert code == 0, output
    document = json.loads(output)
    assert document["peak_rps"] == 100
    assert [(s["service"], s["needed"], s["fits"]) for s in document["services"]] == [
        ("api", 5, True),
        ("worker", 2, True),
    ]
    assert document["warnings"] == []


def test_the_repository_stacks_carry_their_stated_peaks() -> None:
    for stack in ("prod", "staging"):
        result = runner.invoke(cli, ["capacity", stack, "--strict"])
        assert result.exit_code == 0, result.output
        assert f"capacity: stack={stack}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "no stack file Pulumi.nosuch.yaml"),
        (["small", "--peak-rps", "-5"], "--peak-rps"),
        (["small", "--peak-rps", "lots"], "--peak-rps"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_2(project: Path, args: list[str], message: str) -> None:
    code, output = capacity(project, *args)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output


def test_a_missing_or_malformed_measurement_is_exit_2(project: Path) -> None:
    missing = runner.invoke(
        cli, ["capacity", "small", "--project-dir", str(project), "--route-cpu", str(project / "none.json")]
    )
    assert missing.exit_code == 2
    assert "python -m load.measure" in missing.output
    (project / "route_cpu.json").write_text(json.dumps({"classes": {"browse": {}}}))
    with pytest.raises(CapacityError, match="not a route CPU measurement"):
        load_route_cpu(project / "route_cpu.json")


def test_a_mix_that_does_not_add_up_is_refused_naming_the_field(project: Path) -> None:
    stack = {**SMALL_STACK, "platform:capacity": {"mix": {"browse": 50, "session": 30, "checkout": 30}}}
    (project / "Pulumi.small.yaml").write_text(yaml.safe_dump({"config": stack}))
    code, output = capacity(project, "small")
    assert code == 2
    assert "platform:capacity.mix: browse + session + checkout must add up to 100 (got 110)" in output


def test_plan_shows_the_warning_beside_the_plan(project: Path) -> None:
    from platformctl.cli import _capacity_warnings  # noqa: PLC0415 - the plan command's helper

    assert _capacity_warnings(project, "small") == []
    stack = {**SMALL_STACK, "platform:capacity": {"peakRequestsPerSecond": 500}}
    (project / "Pulumi.small.yaml").write_text(yaml.safe_dump({"config": stack}))
    [warning] = _capacity_warnings(project, "small")
    assert warning.startswith("WARN capacity: small api needs 25 tasks at 500 req/s (bound by requests)")
    assert _capacity_warnings(project, "nosuch") == []
