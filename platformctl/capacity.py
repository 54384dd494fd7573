"""The capacity model: the tasks each service needs at the stack's stated peak, against its autoscaling bounds.

Inputs: the stack config's `capacity` (peak requests per second at the load balancer and their mix by
traffic class), each service's task size, autoscaling target and min/max, the AZ floor (`minTasksPerAz` x
AZs), and the CPU per request of each class measured on the local runtime (`load/route_cpu.json`, written by
`python -m load.measure`).

A task is sized to run at the CPU target, not at 100 %: target tracking adds tasks once the average passes it,
so the peak must fit under it. For the API, the request-count policy (`requestsPerTarget` ALB requests per task
per minute) also adds tasks, and whichever policy asks for more decides. The worker's load is the orders the
checkout requests leave: the measured CPU of the worker and relay per checkout request.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from platformctl.plan import read_project, read_stack_config
from stack_config.errors import NAMESPACE
from stack_config.loader import _decode, parse_platform_config
from stack_config.schema import TRAFFIC_CLASSES, PlatformConfig, ServiceConfig

ROUTE_CPU_FILE = Path(__file__).resolve().parent.parent / "load" / "route_cpu.json"
CPU_UNITS_PER_VCPU = 1024  # Fargate's task CPU units
SECONDS_PER_MINUTE = 60  # ALBRequestCountPerTarget counts requests per target per minute


class CapacityError(Exception):
    """The model cannot run: a missing or malformed measurement file, or a bad argument."""


@dataclass(frozen=True)
class RouteCpu:
    """Measured CPU milliseconds per request: the API's per traffic class, the worker's per checkout request."""

    api_ms: dict[str, float]
    worker_ms_per_checkout_request: float
    measured_at: str
    machine: str


def load_route_cpu(path: Path = ROUTE_CPU_FILE) -> RouteCpu:
    try:
        document = json.loads(path.read_text())
        classes = document["classes"]
        api_ms: dict[str, float] = {name: float(classes[name]["api_cpu_ms_per_request"]) for name in TRAFFIC_CLASSES}
        checkout = classes["checkout"]
        worker_ms = float(checkout["worker_cpu_ms"]) / max(1, int(checkout["requests"]))
        measured_at, machine = str(document["measured_at"]), str(document["machine"])
    except FileNotFoundError:
        raise CapacityError(f"{path}: no measurement; write one with `python -m load.measure`") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CapacityError(f"{path}: not a route CPU measurement ({type(error).__name__}: {error})") from None
    if any(value < 0 or not math.isfinite(value) for value in (*api_ms.values(), worker_ms)):
        raise CapacityError(f"{path}: CPU per request must be a finite number >= 0")
    return RouteCpu(api_ms, worker_ms, measured_at, machine)


@dataclass(frozen=True)
class ServiceCapacity:
    service: str
    demand_per_second: float  # requests (API) or checkout requests (worker) per second at the peak
    cpu_ms_per_request: float  # weighted by the mix
    vcpu: float
    cpu_target_percent: float
    tasks_for_cpu: int
    tasks_for_requests: int | None  # the API's request-count policy; None where there is none
    az_floor: int
    min_count: int
    max_count: int
    max_carries_rps: float | None  # the stack's peak that max_count tasks carry at the targets (None: any)
    needed: int = field(init=False)
    bound_by: str = field(init=False)

    def __post_init__(self) -> None:
        reasons = {"cpu": self.tasks_for_cpu, "requests": self.tasks_for_requests or 0, "az floor": self.az_floor}
        bound_by = max(reasons, key=lambda reason: reasons[reason])
        object.__setattr__(self, "needed", reasons[bound_by])
        object.__setattr__(self, "bound_by", bound_by)

    @property
    def fits(self) -> bool:
        return self.needed <= self.max_count

    def warning(self, stack: str, peak: float) -> str | None:
        if self.fits:
            return None
        remedy = {
            "requests": f"services.{self.service}.autoscaling.requestsPerTarget",
            "cpu": f"services.{self.service}.cpu",
        }.get(self.bound_by, "lower minTasksPerAz")
        return (
            f"WARN capacity: {stack} {self.service} needs {self.needed} tasks at {peak:g} req/s (bound by"
            f" {self.bound_by}) but autoscaling stops at maxCount {self.max_count}, which carries"
            f" {self.max_carries_rps or 0:.0f} req/s; raise services.{self.service}.maxCount or {remedy}"
        )


@dataclass(frozen=True)
class Capacity:
    stack: str
    peak_rps: float
    mix: dict[str, float]
    services: list[ServiceCapacity]
    route_cpu: RouteCpu

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.services if (w := s.warning(self.stack, self.peak_rps)) is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "peak_rps": self.peak_rps,
            "mix": self.mix,
            "services": [{**asdict(service), "fits": service.fits} for service in self.services],
            "measured_at": self.route_cpu.measured_at,
            "machine": self.route_cpu.machine,
            "warnings": self.warnings,
        }


def _tasks(load: float, per_task: float) -> int:
    # A hair of slack: 6.0000000001 tasks of float arithmetic are 6 tasks.
    return math.ceil(load / per_task - 1e-9) if per_task > 0 else 0


def model(cfg: PlatformConfig, stack: str, route_cpu: RouteCpu, peak_rps: float | None = None) -> Capacity:
    """The tasks the API and worker need at `peak_rps` (the config's `capacity.peakRequestsPerSecond` if None)."""
    peak = cfg.capacity.peak_requests_per_second if peak_rps is None else peak_rps
    if not (peak > 0 and math.isfinite(peak)):
        raise CapacityError(f"the peak must be a finite number of requests per second above 0 (got {peak:g})")
    mix = cfg.capacity.mix.model_dump()
    shares = {name: mix[name] / 100 for name in TRAFFIC_CLASSES}
    api_ms = sum(shares[name] * route_cpu.api_ms[name] for name in TRAFFIC_CLASSES)
    checkout_rps = peak * shares["checkout"]
    az_floor = cfg.az_count * cfg.services.min_tasks_per_az
    api, worker = cfg.services.api, cfg.services.worker
    return Capacity(
        stack=stack,
        peak_rps=peak,
        mix=mix,
        services=[
            _service(
                "api",
                api,
                demand=peak,
                cpu_ms=api_ms,
                az_floor=az_floor,
                requests_per_task_second=api.autoscaling.requests_per_target / SECONDS_PER_MINUTE,
            ),
            _service(
                "worker",
                worker,
                demand=checkout_rps,
                cpu_ms=route_cpu.worker_ms_per_checkout_request,
                az_floor=az_floor,
                requests_per_task_second=None,
                demand_share=shares["checkout"],
            ),
        ],
        route_cpu=route_cpu,
    )


def _service(
    name: str,
    service: ServiceConfig,
    *,
    demand: float,
    cpu_ms: float,
    az_floor: int,
    requests_per_task_second: float | None,
    demand_share: float = 1.0,
) -> ServiceCapacity:
    """One service's tasks: CPU at the target utilisation, the request-count policy, the AZ floor."""
    vcpu = service.cpu / CPU_UNITS_PER_VCPU
    usable_cpu_ms = 1000 * vcpu * service.autoscaling.cpu_target_percent / 100  # CPU ms per second of one task
    per_task_demand = usable_cpu_ms / cpu_ms if cpu_ms > 0 else math.inf
    if requests_per_task_second is not None:
        per_task_demand = min(per_task_demand, requests_per_task_second)
    return ServiceCapacity(
        service=name,
        demand_per_second=round(demand, 3),
        cpu_ms_per_request=round(cpu_ms, 3),
        vcpu=vcpu,
        cpu_target_percent=service.autoscaling.cpu_target_percent,
        tasks_for_cpu=_tasks(demand * cpu_ms, usable_cpu_ms),
        tasks_for_requests=None if requests_per_task_second is None else _tasks(demand, requests_per_task_second),
        az_floor=az_floor,
        min_count=service.min_count,
        max_count=service.max_count,
        max_carries_rps=round(service.max_count * per_task_demand / demand_share, 1)
        if demand_share > 0 and math.isfinite(per_task_demand)
        else None,
    )


def stack_config(project_dir: Path, stack: str) -> PlatformConfig:
    """The stack file's validated `platform:` config (PlanUsageError, StackConfigError)."""
    config, secret_keys = read_stack_config(project_dir, read_project(project_dir), stack)
    prefix = f"{NAMESPACE}:"
    raw = {key[len(prefix) :]: _decode(value) for key, value in config.items() if key.startswith(prefix)}
    return parse_platform_config(raw, [key[len(prefix) :] for key in secret_keys if key.startswith(prefix)])
