"""Time the prod offline plan against a bare program of the same size under the same mocks.

The bare program registers the same number of plain pulumi-aws resources, of the same types (so
the same pulumi-aws modules load) with the same input payloads, flat: no config, no components,
no output wiring, no invokes. Both run as fresh processes (interpreter start, imports, mock
runtime, registrations), five times each, interleaved; the ratio of medians is what this project's
own code adds on top of Pulumi's mock runtime. Ends with: `plan: resources=N seconds=S floor=F ratio=R`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

REPO = Path(__file__).resolve().parent.parent
RUNS = 5

BARE_PROGRAM = """
import importlib, json, sys
import pulumi
from platformctl.plan import run_program

planned = [r for r in json.load(open(sys.argv[1]))["resources"] if r["custom"]]

def resource_class(token):
    # "aws:ec2/subnet:Subnet" -> pulumi_aws.ec2.Subnet; touching it loads the module as the plan does.
    if token.startswith("pulumi:providers:"):
        return importlib.import_module("pulumi_" + token.rsplit(":", 1)[1]).Provider
    package, module, name = token.split(":")
    module = module.split("/")[0]
    path = "pulumi_" + package + ("" if module == "index" else "." + module)
    return getattr(importlib.import_module(path), name)

def program():
    for resource in planned:
        resource_class(resource["type"])
        pulumi.CustomResource(resource["type"], resource["name"], dict(resource["inputs"]))

plan = run_program(program, project="platform", stack="bench")
assert len(plan.custom_resources()) == len(planned)
"""


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(stack: str = typer.Option("prod", help="The stack to plan.")) -> None:
    """Median wall time of `platformctl plan STACK` against a bare program with as many resources."""
    with tempfile.TemporaryDirectory() as scratch:
        plan_file = Path(scratch) / "plan.json"
        platformctl = str(Path(sys.executable).parent / "platformctl")
        # The plan alone: the policy check is its own process and is measured by its own tests.
        plan_command = [platformctl, "plan", stack, "--no-policy", "--json", str(plan_file)]
        _timed(plan_command)  # warm the file cache for both
        resources = len([r for r in json.loads(plan_file.read_text())["resources"] if r["custom"]])
        bare_command = [sys.executable, "-c", BARE_PROGRAM, str(plan_file)]
        plan_times, bare_times = [], []
        for run in range(RUNS):
            plan_times.append(_timed(plan_command))
            bare_times.append(_timed(bare_command))
            print(f"run {run + 1}: plan {plan_times[-1]:.2f} s, bare {bare_times[-1]:.2f} s")
    seconds, floor = statistics.median(plan_times), statistics.median(bare_times)
    print(f"plan: resources={resources} seconds={seconds:.2f} floor={floor:.2f} ratio={seconds / floor:.2f}")


if __name__ == "__main__":
    typer.run(main)
