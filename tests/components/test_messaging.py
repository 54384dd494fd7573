"""The messaging layer, as the program registers it under the offline mocks."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from app import contract
from platformctl.plan import Plan, PlannedResource
from stack_config.rules import check
from stack_config.schema import PlatformConfig
from tests.support import by_name, config_for, plan_with

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
REDRIVE_ALLOW = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
DAY = 24 * 3600


@pytest.fixture(scope="module")
def mixed_plan() -> Plan:
    """Staging with a FIFO queue, an SQS-managed-SSE queue and two alert addresses."""
    return plan_with(
        config_for(
            "staging",
            messaging={
                "queues": {
                    "orders": {},
                    "payments": {"fifo": True, "maxReceiveCount": 5},
                    "emails": {"encryption": "sqs", "consumer": None},
                }
            },
            observability={"alertEmails": ["a@example.com", "b@example.com"]},
        )
    )


def statements(resource: PlannedResource) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(resource.inputs["policy"])["Statement"]}


def messaging_key_arn(plan: Plan) -> str:
    return str(by_name(plan, "security-messaging-key").outputs["arn"])


def test_queue_takes_the_seed_defaults_and_redrives_to_its_dlq_after_3_receives(prod_plan: Plan) -> None:
    queue, dlq = by_name(prod_plan, "messaging-orders"), by_name(prod_plan, "messaging-orders-dlq")
    assert queue.inputs["name"] == "platform-prod-orders"
    assert queue.inputs["visibilityTimeoutSeconds"] == 120
    assert queue.inputs["messageRetentionSeconds"] == 7 * DAY
    assert dlq.inputs["messageRetentionSeconds"] == 14 * DAY
    assert queue.inputs["receiveWaitTimeSeconds"] == 20 == dlq.inputs["receiveWaitTimeSeconds"]
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq.outputs["arn"], "maxReceiveCount": 3}
    assert "redrivePolicy" not in dlq.inputs
    for resource in (queue, dlq):
        assert resource.inputs["kmsMasterKeyId"] == messaging_key_arn(prod_plan)
        assert resource.inputs["kmsDataKeyReusePeriodSeconds"] == 300
        assert "fifoQueue" not in resource.inputs


def test_only_its_source_queue_may_dead_letter_into_the_dlq(prod_plan: Plan) -> None:
    allow = by_name(prod_plan, "messaging-orders-dlq-redrive-allow")
    assert allow.inputs["queueUrl"] == by_name(prod_plan, "messaging-orders-dlq").id
    assert json.loads(allow.inputs["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [by_name(prod_plan, "messaging-orders").outputs["arn"]],
    }


def test_queue_policies_deny_every_call_without_tls(prod_plan: Plan) -> None:
    for label in ("orders", "orders-dlq"):
        queue = by_name(prod_plan, f"messaging-{label}")
        policy = by_name(prod_plan, f"messaging-{label}-policy")
        assert policy.inputs["queueUrl"] == queue.id
        deny = statements(policy)["DenyInsecureTransport"]
        assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= set(deny["Action"])
        assert deny["Resource"] == [queue.outputs["arn"]]
    assert "EventsTopicSends" not in statements(by_name(prod_plan, "messaging-orders-dlq-policy"))


def test_events_topic_fans_out_to_the_queue_with_raw_delivery(prod_plan: Plan) -> None:
    topic, queue = by_name(prod_plan, "messaging-events"), by_name(prod_plan, "messaging-orders")
    subscription = by_name(prod_plan, "messaging-events-to-orders")
    assert subscription.inputs["protocol"] == "sqs"
    assert subscription.inputs["topic"] == topic.outputs["arn"]
    assert subscription.inputs["endpoint"] == queue.outputs["arn"]
    assert subscription.inputs["rawMessageDelivery"] is True
    send = statements(by_name(prod_plan, "messaging-orders-policy"))["EventsTopicSends"]
    assert send["Principal"] == {"Service": "sns.amazonaws.com"} and send["Action"] == ["sqs:SendMessage"]
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": topic.outputs["arn"]}}


def test_topics_are_encrypted_and_alarms_and_budgets_may_publish_to_alerts(prod_plan: Plan) -> None:
    for label in ("alerts", "events"):
        topic = by_name(prod_plan, f"messaging-{label}")
        assert topic.inputs["kmsMasterKeyId"] == messaging_key_arn(prod_plan)
        policy = by_name(prod_plan, f"messaging-{label}-policy")
        assert policy.inputs["arn"] == topic.outputs["arn"]
        assert statements(policy)["DenyInsecurePublish"]["Effect"] == "Deny"
    publish = statements(by_name(prod_plan, "messaging-alerts-policy"))["ServicesPublish"]
    assert publish["Action"] == ["SNS:Publish"]
    assert {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"} <= set(publish["Principal"]["Service"])
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert "ServicesPublish" not in statements(by_name(prod_plan, "messaging-events-policy"))


def test_alert_emails_subscribe_to_the_alerts_topic(mixed_plan: Plan, prod_plan: Plan) -> None:
    alerts = by_name(mixed_plan, "messaging-alerts").outputs["arn"]
    emails = [s for s in mixed_plan.of_type(SUBSCRIPTION) if s.inputs["protocol"] == "email"]
    assert sorted(s.inputs["endpoint"] for s in emails) == ["a@example.com", "b@example.com"]
    assert {s.inputs["topic"] for s in emails} == {alerts}
    # The shared prod config names no addresses: no subscription is invented.
    assert [s for s in prod_plan.of_type(SUBSCRIPTION) if s.inputs["protocol"] == "email"] == []


def test_fifo_queue_and_its_dlq_are_fifo_without_content_deduplication(mixed_plan: Plan) -> None:
    queue, dlq = by_name(mixed_plan, "messaging-payments"), by_name(mixed_plan, "messaging-payments-dlq")
    assert queue.inputs["name"] == "platform-test-payments.fifo"
    assert dlq.inputs["name"] == "platform-test-payments-dlq.fifo"
    for resource in (queue, dlq):
        assert resource.inputs["fifoQueue"] is True
        assert resource.inputs["contentBasedDeduplication"] is False
    assert json.loads(queue.inputs["redrivePolicy"])["maxReceiveCount"] == 5
    # A standard topic cannot deliver to a FIFO queue, so the events topic does not subscribe it.
    endpoints = {s.inputs["endpoint"] for s in mixed_plan.of_type(SUBSCRIPTION)}
    assert queue.outputs["arn"] not in endpoints
    assert by_name(mixed_plan, "messaging-orders").outputs["arn"] in endpoints
    assert "EventsTopicSends" not in statements(by_name(mixed_plan, "messaging-payments-policy"))


def test_sqs_managed_encryption_when_configured(mixed_plan: Plan) -> None:
    for label in ("emails", "emails-dlq"):
        queue = by_name(mixed_plan, f"messaging-{label}")
        assert queue.inputs["sqsManagedSseEnabled"] is True
        assert "kmsMasterKeyId" not in queue.inputs


def test_every_configured_queue_has_exactly_one_dlq(mixed_plan: Plan) -> None:
    names = sorted(q.inputs["name"] for q in mixed_plan.of_type(QUEUE))
    assert names == [
        "platform-test-emails",
        "platform-test-emails-dlq",
        "platform-test-orders",
        "platform-test-orders-dlq",
        "platform-test-payments-dlq.fifo",
        "platform-test-payments.fifo",
    ]
    assert len(mixed_plan.of_type(REDRIVE_ALLOW)) == 3
    assert len(mixed_plan.of_type(QUEUE_POLICY)) == 6


def dlq_retention_problems(queue: dict[str, Any]) -> list[str]:
    cfg = PlatformConfig.model_validate(config_for("staging", messaging={"queues": {"orders": queue}}))
    return [problem.message for problem in check(cfg) if problem.path == "messaging.queues.orders.dlqRetentionSeconds"]


def test_a_standard_queues_dlq_must_keep_messages_longer_than_the_queue() -> None:
    # A standard queue's message keeps its enqueue time in the DLQ: with equal retention a message
    # that fails on its last day would expire as it reaches the DLQ.
    (problem,) = dlq_retention_problems({"retentionSeconds": 14 * DAY, "dlqRetentionSeconds": 14 * DAY})
    assert problem.startswith(f"must be longer than retentionSeconds {14 * DAY}")
    assert dlq_retention_problems({"retentionSeconds": 7 * DAY, "dlqRetentionSeconds": 7 * DAY + 1}) == []


def test_a_fifo_queues_dlq_may_keep_messages_as_long_as_the_queue() -> None:
    # A FIFO queue's message gets a new enqueue time when it moves to the DLQ.
    assert dlq_retention_problems({"fifo": True, "retentionSeconds": 14 * DAY, "dlqRetentionSeconds": 14 * DAY}) == []
    (problem,) = dlq_retention_problems({"fifo": True, "retentionSeconds": 7 * DAY, "dlqRetentionSeconds": DAY})
    assert problem.startswith(f"must be at least retentionSeconds {7 * DAY}")


def task_statements(plan: Plan, service: str) -> dict[str, dict[str, Any]]:
    return statements(by_name(plan, f"{service}-task-policy"))


@pytest.mark.parametrize("stack", ["prod_plan", "staging_plan"])
def test_the_worker_queue_subscribes_raw_with_a_filter_on_the_event_types_it_handles(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    subscription = by_name(plan, "messaging-events-to-orders")
    assert subscription.inputs["rawMessageDelivery"] is True
    assert subscription.inputs["filterPolicyScope"] == "MessageAttributes"
    assert json.loads(subscription.inputs["filterPolicy"]) == {"event_type": ["order.placed", "order.created"]}
    assert subscription.inputs["filterPolicy"] == contract.ORDER_EVENTS_FILTER_POLICY
    # Within SNS's limits: at most five keys, 150 value combinations, 256 KB.
    policy = json.loads(subscription.inputs["filterPolicy"])
    assert len(policy) <= 5 and math.prod(len(v) for v in policy.values()) <= 150
    assert "fifoTopic" not in by_name(plan, "messaging-events").inputs


@pytest.mark.parametrize("stack", ["prod_plan", "staging_plan"])
def test_the_relay_publishes_to_the_events_topic_and_nobody_sends_to_the_queue_but_the_worker(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    topic, key = by_name(plan, "messaging-events").outputs["arn"], messaging_key_arn(plan)
    worker = task_statements(plan, "worker")
    assert worker["PublishEvents"]["Action"] == ["sns:Publish"] and worker["PublishEvents"]["Resource"] == [topic]
    assert set(worker["EncryptEvents"]["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert worker["EncryptEvents"]["Resource"] == [key]
    # The relay's old grant is gone: the API sends nothing, the worker sends only its own requeues.
    api_actions = {a for s in task_statements(plan, "api").values() for a in s["Action"]}
    assert not {a for a in api_actions if a.startswith(("sqs:", "sns:"))}
    senders = [sid for sid, s in worker.items() if "sqs:SendMessage" in s["Action"]]
    assert senders == ["RequeueOrders"]
    relay_env = {
        e["name"]: e["value"]
        for c in json.loads(by_name(plan, "worker-task").inputs["containerDefinitions"])
        if c["name"] == "relay"
        for e in c["environment"]
    }
    assert relay_env[contract.EVENTS_TOPIC_ARN] == topic


@pytest.mark.parametrize("stack", ["prod_plan", "staging_plan"])
def test_the_messaging_key_lets_sns_encrypt_for_the_queue_and_the_publisher(
    stack: str, request: pytest.FixtureRequest
) -> None:
    plan: Plan = request.getfixturevalue(stack)
    policy = json.loads(by_name(plan, "security-messaging-key").inputs["policy"])["Statement"]
    sns_statements = [
        s for s in policy if "sns.amazonaws.com" in json.dumps(s.get("Principal", {})) and s["Effect"] == "Allow"
    ]
    actions = {a for s in sns_statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= actions


def test_a_fifo_worker_queue_gets_a_fifo_events_topic_that_still_fans_out_to_standard_queues() -> None:
    plan = plan_with(
        config_for("staging", messaging={"queues": {"orders": {"fifo": True}, "audit": {"consumer": None}}})
    )
    topic = by_name(plan, "messaging-events")
    assert topic.inputs["name"] == "platform-test-events.fifo"
    assert topic.inputs["fifoTopic"] is True and topic.inputs["contentBasedDeduplication"] is False
    endpoints = {s.inputs["endpoint"]: s for s in plan.of_type(SUBSCRIPTION) if s.inputs["protocol"] == "sqs"}
    orders, audit = by_name(plan, "messaging-orders").outputs["arn"], by_name(plan, "messaging-audit").outputs["arn"]
    assert set(endpoints) == {orders, audit}
    assert "filterPolicy" in endpoints[orders].inputs and "filterPolicy" not in endpoints[audit].inputs
