"""The messaging layer: SQS work queues with dead-letter queues, and the alerts and domain-events topics."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from app import contract
from components.alarms import SQS, AlarmSet, Alerting, QueueMetrics
from components.iam import Account, Principal, Statement, policy_document
from components.naming import Naming, child_options
from stack_config.schema import AlarmThresholds, MessagingConfig, QueueConfig

if TYPE_CHECKING:
    from components.context import StackContext

FIFO_SUFFIX = ".fifo"
# SQS queue names: 80 characters, `.fifo` included; SNS topic names: 256.
QUEUE_NAME_MAX_LENGTH = 80
TOPIC_NAME_MAX_LENGTH = 256
# Every SQS action a client can call on a queue: none of them may travel over plain HTTP.
QUEUE_ACTIONS = (
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:PurgeQueue",
    "sqs:ListDeadLetterSourceQueues",
    "sqs:StartMessageMoveTask",
)
TOPIC_OWNER_ACTIONS = (
    "SNS:Publish",
    "SNS:Subscribe",
    "SNS:GetTopicAttributes",
    "SNS:SetTopicAttributes",
    "SNS:ListSubscriptionsByTopic",
    "SNS:AddPermission",
    "SNS:RemovePermission",
    "SNS:DeleteTopic",
)
# Services that publish to the alerts topic: alarms, budgets and EventBridge rules.
ALERT_PUBLISHERS = ("cloudwatch", "budgets", "events")
EVERYONE: Principal = {"AWS": "*"}
QUEUE_AGE_PERIODS = 3
# What a consumer calls on a queue it drains (and on its DLQ, to move messages back once a fix is out).
CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")
# SQS encrypts and decrypts with the messaging key on the caller's behalf, sending and receiving alike.
KEY_USE_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# What a publisher to a KMS-encrypted topic needs on its key, besides sns:Publish (SNS key management docs).
TOPIC_PUBLISH_KEY_ACTIONS = ("kms:GenerateDataKey*", "kms:Decrypt")
# The worker's queue gets only the events it handles: SNS matches the `event_type` message attribute.
FILTER_POLICY_SCOPE = "MessageAttributes"


@dataclass(frozen=True)
class MessagingArgs:
    config: MessagingConfig
    naming: Naming
    account: Account
    messaging_key_arn: pulumi.Input[str]
    alert_emails: Sequence[str] = ()
    # The queues' alarms (oldest message age, a message in a DLQ), and `alerting` for the other layers.
    alarm_thresholds: AlarmThresholds | None = None
    # Who is paged (fast SLO burns, the health check): the page topic's email subscribers.
    page_emails: Sequence[str] = ()

    @classmethod
    def for_stack(cls, stack: StackContext) -> MessagingArgs:
        config, observing = stack.config, stack.config.observability
        key = stack.keys["messaging"].arn
        return cls(
            config.messaging,
            stack.naming,
            stack.account,
            key,
            observing.alert_emails,
            observing.alarm_thresholds,
            config.slos.page_emails,
        )


class Messaging(pulumi.ComponentResource):
    """Per configured queue a queue and its DLQ; an alerts topic (email) and an events topic (fans out to SQS).

    `queues` and `dead_letter_queues` are keyed by the configured queue name; the topics are
    `alerts_topic` (alarm and budget actions) and `events_topic` (producers publish domain events).
    """

    queues: dict[str, aws.sqs.Queue]
    dead_letter_queues: dict[str, aws.sqs.Queue]
    alerts_topic: aws.sns.Topic
    # What must wake someone (SLO fast burns): kept apart so a pager subscribes to it and nothing else.
    page_topic: aws.sns.Topic
    events_topic: aws.sns.Topic
    # The alerts topic and the thresholds, for every layer's alarms (None without `alarm_thresholds`).
    alerting: Alerting | None
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: MessagingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:messaging:Messaging", name, None, opts)
        self._name, self._naming, self._account, self._key = name, args.naming, args.account, args.messaging_key_arn

        self.alerts_topic = self._topic("alerts", publishers=ALERT_PUBLISHERS)
        self._email_subscriptions("alerts", self.alerts_topic, args.alert_emails)
        self.page_topic = self._topic("page", publishers=("cloudwatch",))
        self._email_subscriptions("page", self.page_topic, args.page_emails)
        # The worker's queue decides the topic's kind: a FIFO queue takes messages only from a FIFO topic, and a
        # FIFO topic delivers to standard queues too (without the group id), so every other queue still fans out.
        worker_queue = worker_queue_name(args.config)
        fifo_events = worker_queue is not None and args.config.queues[worker_queue].fifo
        self.events_topic = self._topic("events", publishers=(), fifo=fifo_events)

        self.queues, self.dead_letter_queues = {}, {}
        for queue_name, queue_config in args.config.queues.items():
            dead_letter_queue = self._queue(f"{queue_name}-dlq", queue_config, dead_letter_queue=None)
            queue = self._queue(queue_name, queue_config, dead_letter_queue=dead_letter_queue)
            aws.sqs.RedriveAllowPolicy(
                f"{name}-{queue_name}-dlq-redrive-allow",
                queue_url=dead_letter_queue.id,
                # Only its own source queue may dead-letter into the DLQ (and have messages moved back).
                redrive_allow_policy=queue.arn.apply(
                    lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
                ),
                opts=child_options(self),
            )
            # A standard topic cannot deliver to a FIFO queue.
            fan_out = fifo_events or not queue_config.fifo
            self._queue_policy(queue_name, queue, from_events_topic=fan_out)
            self._queue_policy(f"{queue_name}-dlq", dead_letter_queue, from_events_topic=False)
            if fan_out:
                worker = queue_name == worker_queue
                aws.sns.TopicSubscription(
                    f"{name}-events-to-{queue_name}",
                    topic=self.events_topic.arn,
                    protocol="sqs",
                    endpoint=queue.arn,
                    # Consumers get the event body itself, not SNS's envelope, and its message attributes as
                    # SQS message attributes (at most 10 pass with raw delivery; the relay sends 4).
                    raw_message_delivery=True,
                    # The worker's queue takes only the event types it parses; any other queue, every event.
                    filter_policy=contract.ORDER_EVENTS_FILTER_POLICY if worker else None,
                    filter_policy_scope=FILTER_POLICY_SCOPE if worker else None,
                    opts=child_options(self),
                )
            self.queues[queue_name] = queue
            self.dead_letter_queues[queue_name] = dead_letter_queue

        self.alerting = (
            Alerting(self.alerts_topic.arn, args.alarm_thresholds) if args.alarm_thresholds is not None else None
        )
        self.alarms = (
            queue_alarms(AlarmSet(self, name, self._naming, self.alerting), self.metrics) if self.alerting else {}
        )
        self.register_outputs(
            {
                "alarm_arns": {label: alarm.arn for label, alarm in self.alarms.items()},
                "alerts_topic_arn": self.alerts_topic.arn,
                "page_topic_arn": self.page_topic.arn,
                "events_topic_arn": self.events_topic.arn,
                "queue_urls": {key: queue.url for key, queue in self.queues.items()},
                "queue_arns": {key: queue.arn for key, queue in self.queues.items()},
                "dead_letter_queue_arns": {key: queue.arn for key, queue in self.dead_letter_queues.items()},
            }
        )

    @property
    def metrics(self) -> QueueMetrics:
        return QueueMetrics(
            {label: queue.name for label, queue in self.queues.items()},
            {label: queue.name for label, queue in self.dead_letter_queues.items()},
        )

    def grant_publish(self) -> list[Statement]:
        """Publish domain events on the events topic (the outbox relay), with the key the topic encrypts with."""
        return [
            Statement("PublishEvents", ("sns:Publish",), [self.events_topic.arn]),
            Statement("EncryptEvents", TOPIC_PUBLISH_KEY_ACTIONS, [self._key]),
        ]

    def grant_consume(self, queue: str) -> list[Statement]:
        """Drain the queue `queue`: receive and delete, move dead letters back (`app dlq redrive`), put a
        message back for a later try, and the key SQS decrypts with."""
        return [
            Statement(f"Consume{_sid(queue)}", CONSUME_ACTIONS, [self.queues[queue].arn]),
            Statement("RedriveDeadLetters", CONSUME_ACTIONS, [self.dead_letter_queues[queue].arn]),
            Statement(f"Requeue{_sid(queue)}", ("sqs:SendMessage",), [self.queues[queue].arn]),
            Statement("DecryptMessages", KEY_USE_ACTIONS, [self._key]),
        ]

    def _queue(self, label: str, config: QueueConfig, dead_letter_queue: aws.sqs.Queue | None) -> aws.sqs.Queue:
        use_kms = config.encryption == "kms"
        redrive_policy = (
            None
            if dead_letter_queue is None
            else dead_letter_queue.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": config.max_receive_count})
            )
        )
        return aws.sqs.Queue(
            f"{self._name}-{label}",
            name=self._queue_name(label, config.fifo),
            # A FIFO queue's DLQ must be FIFO too. Producers give deduplication ids: a body hash
            # (content-based deduplication) would drop two genuinely identical orders.
            fifo_queue=True if config.fifo else None,
            content_based_deduplication=False if config.fifo else None,
            visibility_timeout_seconds=config.visibility_timeout_seconds,
            message_retention_seconds=(
                config.dlq_retention_seconds if dead_letter_queue is None else config.retention_seconds
            ),
            receive_wait_time_seconds=config.receive_wait_seconds,
            redrive_policy=redrive_policy,
            # The messaging key (its policy lets SNS deliver), or SQS-managed SSE when configured.
            kms_master_key_id=self._key if use_kms else None,
            kms_data_key_reuse_period_seconds=config.kms_data_key_reuse_seconds if use_kms else None,
            sqs_managed_sse_enabled=None if use_kms else True,
            tags=self._naming.tags(label),
            opts=child_options(self),
        )

    def _queue_name(self, label: str, fifo: bool) -> str:
        suffix = FIFO_SUFFIX if fifo else ""
        return self._naming.name(label, max_length=QUEUE_NAME_MAX_LENGTH - len(suffix)) + suffix

    def _queue_policy(self, label: str, queue: aws.sqs.Queue, from_events_topic: bool) -> aws.sqs.QueuePolicy:
        statements = [
            Statement(
                "DenyInsecureTransport",
                QUEUE_ACTIONS,
                [queue.arn],
                EVERYONE,
                {"Bool": {"aws:SecureTransport": "false"}},
                effect="Deny",
            )
        ]
        if from_events_topic:
            statements.append(
                Statement(
                    "EventsTopicSends",
                    ("sqs:SendMessage",),
                    [queue.arn],
                    {"Service": self._account.service_principal("sns")},
                    {"ArnEquals": {"aws:SourceArn": self.events_topic.arn}},
                )
            )
        return aws.sqs.QueuePolicy(
            f"{self._name}-{label}-policy",
            queue_url=queue.id,
            policy=policy_document(*statements),
            opts=child_options(self),
        )

    def _email_subscriptions(self, label: str, topic: aws.sns.Topic, emails: Sequence[str]) -> None:
        for index, email in enumerate(emails):
            aws.sns.TopicSubscription(
                f"{self._name}-{label}-email-{index}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=child_options(self),
            )

    def _topic(self, label: str, publishers: Sequence[str], fifo: bool = False) -> aws.sns.Topic:
        suffix = FIFO_SUFFIX if fifo else ""
        topic = aws.sns.Topic(
            f"{self._name}-{label}",
            name=self._naming.name(label, max_length=TOPIC_NAME_MAX_LENGTH - len(suffix)) + suffix,
            # The relay gives each event's message id as its deduplication id and its order as the group.
            fifo_topic=True if fifo else None,
            content_based_deduplication=False if fifo else None,
            kms_master_key_id=self._key,
            tags=self._naming.tags(label),
            opts=child_options(self),
        )
        account = self._account
        statements = [
            Statement("AccountOwns", TOPIC_OWNER_ACTIONS, [topic.arn], {"AWS": account.root_arn}),
            Statement(
                "DenyInsecurePublish",
                ("SNS:Publish",),
                [topic.arn],
                EVERYONE,
                {"Bool": {"aws:SecureTransport": "false"}},
                effect="Deny",
            ),
        ]
        if publishers:
            statements.append(
                Statement(
                    "ServicesPublish",
                    ("SNS:Publish",),
                    [topic.arn],
                    {"Service": [account.service_principal(service) for service in publishers]},
                    {"StringEquals": {"aws:SourceAccount": account.account_id}},
                )
            )
        aws.sns.TopicPolicy(
            f"{self._name}-{label}-policy",
            arn=topic.arn,
            policy=policy_document(*statements),
            opts=child_options(self),
        )
        return topic


def worker_queue_name(config: MessagingConfig) -> str | None:
    """The queue the worker consumes (the first configured with that consumer): the orders' queue."""
    return next((name for name, queue in config.queues.items() if queue.consumer == "worker"), None)


def _sid(label: str) -> str:
    """A queue's label as a statement id's part (`orders` -> `Orders`): IAM takes letters and digits only."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", label))


def queue_alarms(alarms: AlarmSet, metrics: QueueMetrics) -> dict[str, aws.cloudwatch.MetricAlarm]:
    """A work queue whose oldest message waits too long; any message in a dead-letter queue."""
    thresholds = alarms.thresholds
    for queue, queue_name in metrics.queue_names.items():
        alarms.metric(
            f"{queue}-oldest-message",
            f"The {queue} queue's oldest message waits over {thresholds.queue_oldest_message_seconds} s",
            namespace=SQS,
            metric="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": queue_name},
            statistic="Maximum",
            threshold=thresholds.queue_oldest_message_seconds,
            evaluation_periods=QUEUE_AGE_PERIODS,
        )
    for queue, queue_name in metrics.dead_letter_queue_names.items():
        alarms.metric(
            f"{queue}-dlq-not-empty",
            f"A message of the {queue} queue failed processing and waits in its dead-letter queue",
            namespace=SQS,
            metric="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": queue_name},
            statistic="Maximum",
            threshold=0,
            evaluation_periods=1,
        )
    return alarms.alarms
