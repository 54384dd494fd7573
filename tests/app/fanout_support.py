"""The events topic on moto, as the stack builds it: the orders queue subscribed with raw message delivery and
the filter policy on `event_type` (scope MessageAttributes)."""

from __future__ import annotations

import uuid
from typing import Any

from app import contract


def events_topic(moto: Any, queue_url: str, filter_policy: str = contract.ORDER_EVENTS_FILTER_POLICY) -> str:
    """A topic of its own that fans out to `queue_url`; returns its ARN (EVENTS_TOPIC_ARN)."""
    sns, sqs = moto.client("sns"), moto.client("sqs")
    topic = sns.create_topic(Name=f"events-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            "RawMessageDelivery": "true",
            "FilterPolicy": filter_policy,
            "FilterPolicyScope": "MessageAttributes",
        },
    )
    return str(topic)
