"""Messaging: no message is lost to a poison pill; every work queue drains into a dead-letter queue."""

from __future__ import annotations

from typing import Any

from pulumi_policy import Severity

from rules.common import Resource, Rule, Stack, StackReport, is_map

QUEUE = "aws:sqs/queue:Queue"
REDRIVE_POLICY = "aws:sqs/redrivePolicy:RedrivePolicy"
REDRIVE_ALLOW_POLICY = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"
FOURTEEN_DAYS = 1_209_600
DEFAULT_RETENTION = 345_600  # SQS's default: 4 days


def _redrives(stack: Stack, queue: Resource) -> list[tuple[Resource, Any]]:
    """(resource carrying it, parsed redrive policy) for a queue: inline, or RedrivePolicy resources."""
    found: list[tuple[Resource, Any]] = []
    if queue.get("redrivePolicy"):
        found.append((queue, queue.json("redrivePolicy")))
    for policy in stack.referrers(queue, "queueUrl", REDRIVE_POLICY):
        found.append((policy, policy.json("redrivePolicy")))
    return found


def dead_letter_queues(stack: Stack) -> list[Resource]:
    """Queues some other queue's redrive policy points at, or that declare a redrive-allow policy."""
    dlqs: list[Resource] = []
    for queue in stack.of(QUEUE):
        if queue.get("redriveAllowPolicy") or stack.referrers(queue, "queueUrl", REDRIVE_ALLOW_POLICY):
            dlqs.append(queue)
    for source in stack.of(QUEUE, REDRIVE_POLICY):
        for target in stack.deps(source, "redrivePolicy", QUEUE):
            if target not in dlqs:
                dlqs.append(target)
    return dlqs


@Rule(
    name="sqs-redrive-to-dlq",
    area="messaging",
    kind="operations",
    severity=Severity.HIGH,
    summary="Every queue that is not itself a dead-letter queue redrives to a DLQ of this stack after at most "
    "maxReceiveCount receives.",
    seed="seed 002 async processing (redrive_policy, deadLetterTargetArn), seed 003 resilience patterns",
    checks="",
    remediation="Set redrive_policy=json.dumps({'deadLetterTargetArn': <dlq>.arn, 'maxReceiveCount': 5}) (through "
    "pulumi.Output.json_dumps) on each aws.sqs.Queue of the messaging layer, pointing at its own DLQ.",
    stack=True,
    config={"maxReceiveCount": {"type": "integer", "minimum": 1, "default": 5}},
)
def redrive(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    dlqs = stack.guard(lambda: dead_letter_queues(stack)) or []

    def check(queue: Resource) -> None:
        if queue in dlqs:
            return
        redrives = _redrives(stack, queue)
        if not redrives:
            report(f"{queue.label}: no redrive policy to a dead-letter queue", queue.urn)
        for carrier, policy in redrives:
            if not stack.deps(carrier, "redrivePolicy", QUEUE):
                report(f"{queue.label}: the redrive target is not a queue of this stack", queue.urn)
            count = policy.get("maxReceiveCount") if is_map(policy) else None
            if not isinstance(count, int | float) or not 1 <= count <= config["maxReceiveCount"]:
                report(f"{queue.label}: maxReceiveCount {count}, at most {config['maxReceiveCount']}", queue.urn)

    stack.check_each(stack.of(QUEUE), check)


def _retention(queue: Resource) -> int:
    return int(queue.get("messageRetentionSeconds") or DEFAULT_RETENTION)


def _sources(stack: Stack, dlq: Resource) -> list[Resource]:
    """The queues that redrive into `dlq`: by their own redrive policy, or by a RedrivePolicy resource."""
    sources = [queue for queue in stack.of(QUEUE) if dlq in stack.deps(queue, "redrivePolicy", QUEUE)]
    for policy in stack.of(REDRIVE_POLICY):
        if dlq in stack.deps(policy, "redrivePolicy", QUEUE):
            sources.extend(stack.deps(policy, "queueUrl", QUEUE))
    return sources


@Rule(
    name="sqs-dlq-retention",
    area="messaging",
    kind="operations",
    severity=Severity.MEDIUM,
    summary="Dead-letter queues keep messages for the configured time (default the SQS maximum, 14 days), and "
    "longer than each standard source queue (whose messages keep their enqueue time in the DLQ), so failures "
    "can be investigated and redriven.",
    seed="seed 002 async processing (DLQ), seed 003 resilience patterns",
    checks="",
    remediation="Set message_retention_seconds=1209600 on each DLQ (aws.sqs.Queue) of the messaging layer, and keep "
    "platform:messaging.queues.<name>.retentionSeconds below the DLQ's.",
    stack=True,
    config={"minRetentionSeconds": {"type": "integer", "minimum": 60, "default": FOURTEEN_DAYS}},
)
def dlq_retention(stack: Stack, config: dict[str, Any], report: StackReport) -> None:
    def check(dlq: Resource) -> None:
        seconds = _retention(dlq)
        if seconds < config["minRetentionSeconds"]:
            report(f"{dlq.label}: keeps messages {seconds}s < {config['minRetentionSeconds']}s", dlq.urn)
        for source in _sources(stack, dlq):
            # A FIFO queue's message gets a new enqueue time in the DLQ; a standard queue's keeps its own.
            if source.get("fifoQueue") is not True and seconds <= _retention(source):
                report(
                    f"{dlq.label}: keeps messages {seconds}s, no longer than its standard source queue "
                    f"{source.name} ({_retention(source)}s), so a message failing late expires on arrival",
                    dlq.urn,
                )

    stack.check_each(stack.guard(lambda: dead_letter_queues(stack)) or [], check)
