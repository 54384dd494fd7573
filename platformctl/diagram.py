"""The architecture drawn from an offline plan: layers as groups, traffic and data paths as edges, in Mermaid.

Nothing is drawn by hand: nodes are the resources on a request's or a message's path, edges come
from how the program wired them (property dependencies, DNS names, IAM actions):

- client -> Route 53 alias records -> CloudFront (its WAF attached) -> the origin each record names
  (the ALB) and the S3 origins it reads;
- ALB -> the ECS services whose target groups its listeners forward to;
- service -> RDS Proxy -> Aurora, service -> ElastiCache, as the task definitions reference them;
- service -> topic where its task role may sns:Publish (the outbox relay), topic -> queue by its SQS
  subscriptions (fan-out), service -> queue where it may sqs:SendMessage but not receive, queue -> service where it
  may sqs:ReceiveMessage, queue -> dead-letter queue by its redrive policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

STACK_TYPE = "pulumi:pulumi:Stack"
CLIENT = "client"
KINDS = {
    "aws:route53/record:Record": "Route 53",
    "aws:cloudfront/distribution:Distribution": "CloudFront",
    "aws:wafv2/webAcl:WebAcl": "WAF",
    "aws:lb/loadBalancer:LoadBalancer": "ALB",
    "aws:ecs/service:Service": "Fargate service",
    "aws:rds/proxy:Proxy": "RDS Proxy",
    "aws:rds/cluster:Cluster": "Aurora",
    "aws:elasticache/replicationGroup:ReplicationGroup": "ElastiCache",
    "aws:sqs/queue:Queue": "SQS",
    "aws:sns/topic:Topic": "SNS",
    "aws:s3/bucket:Bucket": "S3",
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    dotted: bool = False


@dataclass
class Diagram:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # urn (or CLIENT) -> resource
    edges: list[Edge] = field(default_factory=list)

    def connect(
        self, source: Mapping[str, Any] | str, target: Mapping[str, Any], label: str = "", *, dotted: bool = False
    ) -> None:
        for end in (source, target):
            if not isinstance(end, str):
                self.nodes[end["urn"]] = dict(end)
        source_urn = source if isinstance(source, str) else source["urn"]
        edge = Edge(source_urn, target["urn"], label, dotted)
        if edge not in self.edges:
            self.edges.append(edge)


class _Plan:
    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.resources: dict[str, dict[str, Any]] = {r["urn"]: r for r in plan.get("resources", [])}

    def of_type(self, type_token: str) -> list[dict[str, Any]]:
        return sorted((r for r in self.resources.values() if r["type"] == type_token), key=lambda r: r["name"])

    def deps(
        self, resource: Mapping[str, Any], prop: str | None = None, type_token: str | None = None
    ) -> list[dict[str, Any]]:
        """What `resource` (one property of it, or any) was built from, optionally of one type."""
        by_prop = resource.get("propertyDependencies") or {}
        urns = by_prop.get(prop, []) if prop else [urn for urns in by_prop.values() for urn in urns]
        found = [self.resources[urn] for urn in dict.fromkeys(urns) if urn in self.resources]
        return [r for r in found if type_token is None or r["type"] == type_token]

    def layer(self, resource: Mapping[str, Any]) -> str:
        current = resource
        while True:
            parent = self.resources.get(current.get("parent") or "")
            if parent is None or parent["type"] == STACK_TYPE:
                return "stack" if current is resource else str(current["name"])
            current = parent


def build(plan: Mapping[str, Any]) -> Diagram:
    index = _Plan(plan)
    diagram = Diagram()
    _edge_paths(index, diagram)
    _service_paths(index, diagram)
    _message_paths(index, diagram)
    return diagram


def _edge_paths(index: _Plan, diagram: Diagram) -> None:
    records = index.of_type("aws:route53/record:Record")
    for distribution in index.of_type("aws:cloudfront/distribution:Distribution"):
        for record in records:
            if distribution in index.deps(record, "aliases"):
                diagram.connect(CLIENT, record, "DNS")
                diagram.connect(record, distribution)
        for acl in index.deps(distribution, "webAclId", "aws:wafv2/webAcl:WebAcl"):
            diagram.connect(acl, distribution, "filters", dotted=True)
        for origin in distribution["inputs"].get("origins") or []:
            for record in records:
                if record["inputs"].get("name") == origin.get("domainName"):
                    for target in index.deps(record, "aliases"):
                        diagram.connect(distribution, target, "HTTPS origin")
        for bucket in index.deps(distribution, "origins", "aws:s3/bucket:Bucket"):
            diagram.connect(distribution, bucket, "static assets")


def _service_paths(index: _Plan, diagram: Diagram) -> None:
    forwards = _load_balancer_targets(index)
    for service in index.of_type("aws:ecs/service:Service"):
        for target_group in index.deps(service, "loadBalancers", "aws:lb/targetGroup:TargetGroup"):
            for load_balancer in forwards.get(target_group["urn"], []):
                diagram.connect(load_balancer, service)
        for task in index.deps(service, "taskDefinition", "aws:ecs/taskDefinition:TaskDefinition"):
            used = index.deps(task, "containerDefinitions")
            proxied = set()
            for proxy in (r for r in used if r["type"] == "aws:rds/proxy:Proxy"):
                diagram.connect(service, proxy, "SQL")
                for target in index.of_type("aws:rds/proxyTarget:ProxyTarget"):
                    if proxy in index.deps(target, "dbProxyName"):
                        for cluster in index.deps(target, "dbClusterIdentifier", "aws:rds/cluster:Cluster"):
                            diagram.connect(proxy, cluster)
                            proxied.add(cluster["urn"])
            for cluster in (r for r in used if r["type"] == "aws:rds/cluster:Cluster" and r["urn"] not in proxied):
                diagram.connect(service, cluster, "SQL")
            for cache in (r for r in used if r["type"] == "aws:elasticache/replicationGroup:ReplicationGroup"):
                diagram.connect(service, cache, "cache")


def _load_balancer_targets(index: _Plan) -> dict[str, list[dict[str, Any]]]:
    """Target group urn -> the load balancers whose listeners (or their rules) forward to it."""
    targets: dict[str, list[dict[str, Any]]] = {}
    for listener in index.of_type("aws:lb/listener:Listener"):
        balancers = index.deps(listener, "loadBalancerArn", "aws:lb/loadBalancer:LoadBalancer")
        groups = index.deps(listener, "defaultActions", "aws:lb/targetGroup:TargetGroup")
        for rule in index.of_type("aws:lb/listenerRule:ListenerRule"):
            if listener in index.deps(rule, "listenerArn"):
                groups += index.deps(rule, "actions", "aws:lb/targetGroup:TargetGroup")
        for group in groups:
            targets.setdefault(group["urn"], []).extend(balancers)
    return targets


def _message_paths(index: _Plan, diagram: Diagram) -> None:
    for service in index.of_type("aws:ecs/service:Service"):
        for topic, actions in _grants(index, service, "aws:sns/topic:Topic"):
            if "sns:Publish" in actions:
                diagram.connect(service, topic, "outbox relay")
        for queue, actions in _grants(index, service, "aws:sqs/queue:Queue"):
            if "sqs:SendMessage" in actions and "sqs:ReceiveMessage" not in actions:
                diagram.connect(service, queue, "send")
            if "sqs:ReceiveMessage" in actions:
                diagram.connect(queue, service, "consume")
    for subscription in index.of_type("aws:sns/topicSubscription:TopicSubscription"):
        for topic in index.deps(subscription, "topic", "aws:sns/topic:Topic"):
            if topic["urn"] in diagram.nodes:
                for queue in index.deps(subscription, "endpoint", "aws:sqs/queue:Queue"):
                    diagram.connect(topic, queue, "fan-out")
    for queue in index.of_type("aws:sqs/queue:Queue"):
        if queue["urn"] in diagram.nodes:
            for dead_letter in index.deps(queue, "redrivePolicy", "aws:sqs/queue:Queue"):
                diagram.connect(queue, dead_letter, "after max receives", dotted=True)


def _grants(index: _Plan, service: Mapping[str, Any], type_token: str) -> Iterator[tuple[dict[str, Any], set[str]]]:
    """Each resource of `type_token` the service's task role may act on, with the actions its role policies allow."""
    for task in index.deps(service, "taskDefinition", "aws:ecs/taskDefinition:TaskDefinition"):
        roles = index.deps(task, "taskRoleArn", "aws:iam/role:Role")
        for policy in index.of_type("aws:iam/rolePolicy:RolePolicy"):
            if not any(role in index.deps(policy, "role") for role in roles):
                continue
            actions = _allowed_actions(policy["inputs"].get("policy"))
            for found in index.deps(policy, "policy", type_token):
                yield found, actions


def _allowed_actions(document: Any) -> set[str]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return set()
    statements = (document or {}).get("Statement") or []
    actions: set[str] = set()
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect", "Allow") == "Allow":
            named = statement.get("Action") or []
            actions.update([named] if isinstance(named, str) else named)
    return actions


def _node_id(urn: str) -> str:
    return "client" if urn == CLIENT else re.sub(r"[^A-Za-z0-9_]", "_", urn.rsplit("::", 1)[-1])


def to_mermaid(plan: Mapping[str, Any], diagram: Diagram | None = None) -> str:
    """Mermaid `flowchart LR`: one subgraph per layer, nodes labelled kind and name, in a stable order."""
    diagram = diagram or build(plan)
    index = _Plan(plan)
    lines = ["flowchart LR", f"  {_node_id(CLIENT)}([client])"]
    layers: dict[str, list[dict[str, Any]]] = {}
    for resource in diagram.nodes.values():
        layers.setdefault(index.layer(resource), []).append(resource)
    for layer in sorted(layers):
        lines.append(f'  subgraph {_node_id("layer_" + layer)}["{layer}"]')
        for resource in sorted(layers[layer], key=lambda r: r["name"]):
            kind = KINDS.get(resource["type"], resource["type"].rsplit(":", 1)[-1])
            lines.append(f'    {_node_id(resource["urn"])}["{kind}<br/>{resource["name"]}"]')
        lines.append("  end")
    for edge in _ordered(diagram.edges):
        arrow = "-.->" if edge.dotted else "-->"
        label = f"|{edge.label}|" if edge.label else ""
        lines.append(f"  {_node_id(edge.source)} {arrow}{label} {_node_id(edge.target)}")
    return "\n".join(lines) + "\n"


def _ordered(edges: Iterable[Edge]) -> list[Edge]:
    return sorted(edges, key=lambda e: (_node_id(e.source), _node_id(e.target), e.label))


def to_markdown(plan: Mapping[str, Any]) -> str:
    return f"```mermaid\n{to_mermaid(plan)}```\n"
