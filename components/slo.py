"""Service level objectives: each service's objectives as multi-window, multi-burn-rate alarms.

An indicator is a bad-event ratio in metric math (5xx answers over requests, slow answers over requests,
failed messages over messages). Per burn-rate pair (`stack_config/slo.py`) the ratio is alarmed over the
long and the short window, each a single period of that length; a composite alarm pages (or opens a
ticket) only while both breach, so a burst that has stopped stops alerting within the short window. The
window alarms notify nobody themselves: the composite is what is routed, by severity, to its topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from app import contract
from components.alarms import ALB, RequestPathMetrics, alarm_name
from components.naming import Naming, child_options
from stack_config.schema import SloConfig
from stack_config.slo import BURN_RATE_WINDOWS, BurnRateWindow, Severity, error_budget

if TYPE_CHECKING:
    from components.context import StackContext
    from components.load_balancer import LoadBalancer
    from components.messaging import Messaging

# The worker publishes its counts under this `Service` dimension value (app/worker/consumer.py).
WORKER_SERVICE_DIMENSION = "worker"
# A dashboard's burn-rate line is read per hour: the page pair's long window.
BURN_RATE_GRAPH_PERIOD = 3600


@dataclass(frozen=True)
class Fetch:
    """One metric an indicator's expression reads (by `query_id`), summed or as `stat`, per period."""

    query_id: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    stat: str = "Sum"


@dataclass(frozen=True)
class Indicator:
    """A service level indicator, `bad_ratio` over `fetches`, held to `objective_percent` good events."""

    label: str
    title: str
    objective_percent: float
    fetches: tuple[Fetch, ...]
    bad_ratio: str

    @property
    def budget(self) -> float:
        return error_budget(self.objective_percent)

    def queries(self, period: int) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
        """The alarm's queries: every fetch over `period` seconds, and the ratio as the value compared."""
        return [
            *[
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id=fetch.query_id,
                    return_data=False,
                    metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                        namespace=fetch.namespace,
                        metric_name=fetch.metric,
                        dimensions=dict(fetch.dimensions),
                        period=period,
                        stat=fetch.stat,
                    ),
                )
                for fetch in self.fetches
            ],
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="bad", expression=self.bad_ratio, label=f"{self.title}: bad-event ratio", return_data=True
            ),
        ]


def indicators(config: SloConfig, request_path: RequestPathMetrics | None, namespace: str) -> list[Indicator]:
    """The API's availability and latency (from the ALB, both target groups) and the worker's availability."""
    found: list[Indicator] = []
    if request_path is not None:
        groups = request_path.target_group_dimensions()
        requests = [Fetch(f"r{i}", ALB, "RequestCount", dims) for i, dims in enumerate(groups)]
        total = _sum_filled([fetch.query_id for fetch in requests])
        errors = [Fetch(f"e{i}", ALB, "HTTPCode_Target_5XX_Count", dims) for i, dims in enumerate(groups)]
        found.append(
            Indicator(
                "api-availability",
                "API availability",
                config.api.availability_percent,
                (*errors, *requests),
                f"{_sum_filled([fetch.query_id for fetch in errors])} / {total}",
            )
        )
        # PR(:T) is the percentage of requests answered within T seconds: weighted by each group's requests, the
        # share answered slower is a bad-event ratio with a budget, which a p95 line on a graph cannot give.
        bound = config.api.latency_threshold_ms / 1000
        within = [Fetch(f"p{i}", ALB, "TargetResponseTime", dims, f"PR(:{bound:g})") for i, dims in enumerate(groups)]
        slow = " + ".join(
            f"(100 - FILL({pr.query_id}, 100)) * FILL({count.query_id}, 0)"
            for pr, count in zip(within, requests, strict=True)
        )
        found.append(
            Indicator(
                "api-latency",
                f"API answers within {config.api.latency_threshold_ms} ms",
                config.api.latency_percent,
                (*within, *requests),
                f"({slow}) / 100 / {total}",
            )
        )
    found.append(worker_availability(config, namespace))
    return found


def worker_availability(config: SloConfig, namespace: str) -> Indicator:
    """Failed (or invalid) messages over all the worker finished, from the app's own counts."""
    worker = {"Service": WORKER_SERVICE_DIMENSION}
    failed, processed = contract.METRIC_MESSAGES_FAILED, contract.METRIC_MESSAGES_PROCESSED
    return Indicator(
        "worker-availability",
        "Worker messages processed",
        config.worker.availability_percent,
        (Fetch("f", namespace, failed.name, worker), Fetch("d", namespace, processed.name, worker)),
        "FILL(f, 0) / (FILL(f, 0) + FILL(d, 0))",
    )


def fastest_page_pair() -> BurnRateWindow:
    """The page pair with the shortest long window (14.4x over 1 h / 5 min): the first to fire."""
    return min((pair for pair in BURN_RATE_WINDOWS if pair.severity == "page"), key=lambda pair: pair.long_seconds)


def fastest_burn_threshold(indicator: Indicator, window_days: int) -> float:
    """The bad-event ratio of the fastest page pair (14.4 x the budget over 30 days): a deployment above it rolls
    back, as it would page within the hour if left running."""
    return fastest_page_pair().threshold(indicator.objective_percent, window_days)


def _sum_filled(query_ids: Sequence[str]) -> str:
    # A target group with no traffic (the idle one of a blue/green pair) has no data points: it counts as 0.
    return "(" + " + ".join(f"FILL({query_id}, 0)" for query_id in query_ids) + ")"


# --- the dashboard rows -------------------------------------------------------------------------------


def dashboard_row(indicator: Indicator, region: str, window_days: int) -> list[dict[str, Any]]:
    """The budget left over the SLO window, and the hourly burn rate against the page pairs' rates."""
    fetches = [
        [
            fetch.namespace,
            fetch.metric,
            *[part for pair in fetch.dimensions.items() for part in pair],
            {"id": fetch.query_id, "stat": fetch.stat, "visible": False},
        ]
        for fetch in indicator.fetches
    ]
    budget = f"{indicator.budget!r}"
    budget_left = [
        *fetches,
        [{"expression": indicator.bad_ratio, "id": "bad", "visible": False}],
        [{"expression": f"100 * (1 - bad / {budget})", "id": "left", "label": "Error budget left (%)"}],
    ]
    burn_rate = [
        *fetches,
        [{"expression": indicator.bad_ratio, "id": "bad", "visible": False}],
        [{"expression": f"bad / {budget}", "id": "burn", "label": "Burn rate (x budget)"}],
    ]
    pages = [
        {"label": f"page {pair.label}", "value": pair.burn_rate(window_days)}
        for pair in BURN_RATE_WINDOWS
        if pair.severity == "page"
    ]
    title = f"SLO {indicator.title} ({indicator.objective_percent:g} %)"
    return [
        {
            "type": "metric",
            "width": 8,
            "height": 6,
            "properties": {
                "title": f"{title}: budget left, {window_days} d",
                "region": region,
                "view": "singleValue",
                # One period spanning the whole window: the ratio of the window, not of a day in it.
                "period": window_days * 24 * 3600,
                "setPeriodToTimeRange": True,
                "start": f"-P{window_days}D",
                "metrics": budget_left,
            },
        },
        {
            "type": "metric",
            "width": 16,
            "height": 6,
            "properties": {
                "title": f"{title}: burn rate",
                "region": region,
                "view": "timeSeries",
                "period": BURN_RATE_GRAPH_PERIOD,
                "metrics": burn_rate,
                "annotations": {"horizontal": pages},
            },
        },
    ]


# --- the alarms ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SloArgs:
    config: SloConfig
    naming: Naming
    indicators: Sequence[Indicator]
    # Fast burns page; slow burns go to the alerts topic, whose email subscribers already work its tickets.
    page_topic_arn: pulumi.Input[str]
    ticket_topic_arn: pulumi.Input[str]

    @classmethod
    def for_stack(cls, stack: StackContext, load_balancer: LoadBalancer, messaging: Messaging) -> SloArgs:
        config = stack.config
        found = indicators(config.slos, load_balancer.metrics, config.observability.app_metrics_namespace)
        return cls(config.slos, stack.naming, found, messaging.page_topic.arn, messaging.alerts_topic.arn)


class ServiceLevelObjectives(pulumi.ComponentResource):
    """Per indicator and burn-rate pair: `window_alarms` (long and short) and the `burn_alarms` composite."""

    window_alarms: dict[str, aws.cloudwatch.MetricAlarm]
    burn_alarms: dict[str, aws.cloudwatch.CompositeAlarm]

    def __init__(self, name: str, args: SloArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:slo:ServiceLevelObjectives", name, None, opts)
        self._name, self._args = name, args
        topics: dict[Severity, pulumi.Input[str]] = {"page": args.page_topic_arn, "ticket": args.ticket_topic_arn}
        self.window_alarms, self.burn_alarms = {}, {}
        for indicator in args.indicators:
            for pair in BURN_RATE_WINDOWS:
                label = f"slo-{indicator.label}-{pair.label}"
                threshold = pair.threshold(indicator.objective_percent, args.config.window_days)
                windows = [
                    self._window_alarm(f"{label}-{span}", indicator, pair, seconds, threshold)
                    for span, seconds in (("long", pair.long_seconds), ("short", pair.short_seconds))
                ]
                rule = " AND ".join(f'ALARM("{alarm_name(args.naming, window)}")' for window in windows)
                topic = topics[pair.severity]
                self.burn_alarms[label] = aws.cloudwatch.CompositeAlarm(
                    f"{name}-{label.removeprefix('slo-')}",
                    alarm_name=alarm_name(args.naming, label),
                    alarm_description=(
                        f"{indicator.title} burns its {indicator.objective_percent:g} % objective's budget"
                        f" {pair.burn_rate(args.config.window_days):g}x too fast over {pair.label.split('-')[1]}"
                        f" and still in the last {pair.short_seconds // 60} min ({pair.severity})"
                    ),
                    alarm_rule=rule,
                    alarm_actions=[topic],
                    ok_actions=[topic],
                    tags=args.naming.tags(label),
                    opts=child_options(self, depends_on=[self.window_alarms[window] for window in windows]),
                )
        self.register_outputs({"burn_alarm_arns": {label: alarm.arn for label, alarm in self.burn_alarms.items()}})

    @property
    def fast_burn_alarm_names(self) -> list[pulumi.Output[str]]:
        """The page-severity composites: what pages a person."""
        return [alarm.alarm_name for label, alarm in self.burn_alarms.items() if "-page-" in label]

    def fast_burn_alarms(self, service: str) -> list[aws.cloudwatch.MetricAlarm]:
        """The fastest page pair's short-window alarm of each of `service`'s indicators ("api", "worker"): what
        a deployment's rollback and an experiment's stop condition watch, in place of the composite.

        Neither ECS nor FIS documents composite alarms as accepted there, and both poll `DescribeAlarms`, which
        returns only metric alarms unless asked for composites. The short window is also the one that can fire
        within a canary's bake or a five-minute experiment: the long window (an hour) is for paging people.
        """
        pair = fastest_page_pair()
        return [
            self.window_alarms[label]
            for indicator in self._args.indicators
            if indicator.label.split("-")[0] == service
            and (label := f"slo-{indicator.label}-{pair.label}-short") in self.window_alarms
        ]

    def _window_alarm(
        self, label: str, indicator: Indicator, pair: BurnRateWindow, seconds: int, threshold: float
    ) -> str:
        naming = self._args.naming
        self.window_alarms[label] = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{label.removeprefix('slo-')}",
            name=alarm_name(naming, label),
            alarm_description=(
                f"{indicator.title}: bad-event ratio over {seconds // 60} min above {threshold:.4g}"
                f" ({pair.severity} pair {pair.label}; notifies through its composite alarm)"
            ),
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
            # One period as long as the window: the ratio of the window itself.
            evaluation_periods=1,
            metric_queries=indicator.queries(seconds),
            # No requests or messages: nothing burns.
            treat_missing_data="notBreaching",
            # Only the composite notifies: each window alone is either a stopped burst or a slow drift.
            actions_enabled=False,
            tags=naming.tags(label),
            opts=child_options(self),
        )
        return label
