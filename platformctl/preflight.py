"""Read-only checks of the AWS account a stack is about to deploy to, each a line: pass or fail, and the fix.

What the stack needs is read from its offline plan (security group rules, Elastic IPs, VPCs,
Fargate vCPUs at the services' maximum task counts, the backup copy region, the budget's tag
filter); what the account has comes from Describe/Get/List calls only. Every client is wrapped so
that any other operation is refused before a request is built (`ReadOnlyViolation`). Credentials
are whatever boto3 finds in the environment (and `AWS_ENDPOINT_URL`, which is how the tests point
it at moto's server).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from platformctl.cost import split_capacity

READ_ONLY_PREFIXES = ("Describe", "Get", "List")
PASS, FAIL, WARN, ERROR = "pass", "fail", "warn", "error"
FAILING = (FAIL, ERROR)
ERROR_TEXT_LIMIT = 160
ECS_SERVICE_LINKED_ROLE = "AWSServiceRoleForECS"
# Service Quotas codes: https://docs.aws.amazon.com/general/latest/gr/{vpc,ec2,ecs}-service.html
RULES_PER_SECURITY_GROUP = ("vpc", "L-0EA8095F", 60)
VPCS_PER_REGION = ("vpc", "L-F678F1CE", 5)
ELASTIC_IPS = ("ec2", "L-0263D0A3", 5)
FARGATE_ON_DEMAND_VCPUS = ("fargate", "L-3032A538", 6)
FARGATE_SPOT_VCPUS = ("fargate", "L-36FBB829", 6)
BACKUP_RESOURCE_TYPES = ("Aurora", "S3")
# CloudFront's origin-facing list: the heaviest AWS-managed prefix list, when the account reports none.
HEAVIEST_AWS_PREFIX_LIST = 55


class ReadOnlyViolation(Exception):
    """Preflight tried an operation that could change the account."""


def read_only(client: Any) -> Any:
    """Refuse, before any request is built, every operation but Describe*, Get* and List*."""

    def refuse(model: Any, **_: Any) -> None:
        if not model.name.startswith(READ_ONLY_PREFIXES):
            raise ReadOnlyViolation(
                f"preflight is read-only: refused {client.meta.service_model.service_name}:{model.name}"
            )

    client.meta.events.register_first("before-parameter-build", refuse)
    return client


ClientFactory = Callable[[str, str], Any]


def boto3_clients() -> ClientFactory:
    """Read-only clients with the environment's credentials, one per (service, region)."""
    import boto3  # noqa: PLC0415

    session = boto3.session.Session()
    cache: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in cache:
            cache[service, region] = read_only(session.client(service, region_name=region))  # type: ignore[call-overload]
        return cache[service, region]

    return client


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass; fail; warn (could not be confirmed from this account); error (the check could not run)
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" | fix: {self.fix}" if self.fix and self.status != PASS else ""
        return f"{self.status.upper():<5} {self.name}: {self.detail}{fix}"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class Target:
    """What the checks need to know beyond the plan: where, and the DNS names."""

    region: str
    hosted_zone: str


def run_checks(plan: Mapping[str, Any], target: Target, clients: ClientFactory) -> list[Check]:
    needs = _Needs(plan)
    vcpus = needs.fargate_vcpus()
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("security group rules per group", lambda: _rules_per_group(needs, target, clients)),
        ("Elastic IPs", lambda: _elastic_ips(needs, target, clients)),
        ("VPCs", lambda: _vpcs(needs, target, clients)),
        *[
            (_fargate_name(spot), lambda spot=spot: _fargate_vcpus(vcpus[spot], spot, target, clients))
            for spot in (False, True)
            if vcpus[spot]
        ],
        (f"hosted zone {target.hosted_zone}", lambda: _hosted_zone(target, clients)),
        ("cost allocation tag", lambda: _cost_allocation_tag(needs, clients)),
        *[
            (f"AWS Backup opt-in in {region}", lambda region=region: _backup_opt_in(region, clients))
            for region in needs.backup_regions(target.region)
        ],
        ("ECS service-linked role", lambda: _service_linked_role(clients)),
    ]
    return [_guarded(name, check) for name, check in checks]


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except ReadOnlyViolation:
        raise
    except Exception as error:  # noqa: BLE001 - an unreadable answer is a line of the report, not a traceback
        # One line: an endpoint's HTML error page would otherwise spill over the report.
        text = " ".join(str(error).split())
        text = text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"
        operation = getattr(error, "operation_name", None)
        fix = f"allow the credentials {operation} (read-only)" if operation else "see the error"
        return Check(name, ERROR, f"could not check: {type(error).__name__}: {text}", fix)


class _Needs:
    """What the stack's plan will ask of the account."""

    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.resources: dict[str, dict[str, Any]] = {r["urn"]: r for r in plan.get("resources", [])}

    def of_type(self, type_token: str) -> list[dict[str, Any]]:
        return [r for r in self.resources.values() if r["type"] == type_token and r.get("custom")]

    def count(self, type_token: str) -> int:
        return len(self.of_type(type_token))

    def rules_per_group(self, prefix_list_weight: Callable[[str], int]) -> dict[tuple[str, str], int]:
        """(group name, direction) -> rule entries, a prefix list by its max entries.

        AWS counts IPv4 and IPv6 rules apart; adding both is the safe side (the program uses IPv4).
        """
        names = {r["urn"]: r["name"] for r in self.of_type("aws:ec2/securityGroup:SecurityGroup")}
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for direction, type_token in (
            ("inbound", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"),
            ("outbound", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"),
        ):
            for rule in self.of_type(type_token):
                for group in (rule.get("propertyDependencies") or {}).get("securityGroupId", []):
                    inputs = rule["inputs"]
                    weight = prefix_list_weight(inputs["prefixListId"]) if inputs.get("prefixListId") else 1
                    counts[names.get(group, group), direction] += weight
        return dict(counts)

    def fargate_vcpus(self) -> dict[bool, float]:
        """vCPUs at every service's maximum task count, on demand (False) and on Spot (True)."""
        totals = {False: 0.0, True: 0.0}
        for service in self.of_type("aws:ecs/service:Service"):
            deps = service.get("propertyDependencies") or {}
            task = next((self.resources[u] for u in deps.get("taskDefinition", []) if u in self.resources), None)
            if task is None:
                continue
            vcpu = int(task["inputs"]["cpu"]) / 1024
            tasks = float(service["inputs"].get("desiredCount", 1))
            for target in self.of_type("aws:appautoscaling/target:Target"):
                if service["urn"] in target.get("dependencies", []):
                    tasks = float(target["inputs"]["maxCapacity"])
            on_demand, spot = split_capacity(tasks, service["inputs"].get("capacityProviderStrategies") or [])
            totals[False] += on_demand * vcpu
            totals[True] += spot * vcpu
        return totals

    def backup_regions(self, home: str) -> list[str]:
        regions = [home] if self.of_type("aws:backup/plan:Plan") else []
        for plan in self.of_type("aws:backup/plan:Plan"):
            for rule in plan["inputs"].get("rules") or []:
                for copy in rule.get("copyActions") or []:
                    region = str(copy.get("destinationVaultArn", "")).split(":")[3:4]
                    if region and region[0] not in regions:
                        regions.append(region[0])
        return regions

    def budget_tag(self) -> str | None:
        """The tag key the budget filters on (`user:stack$prod` -> `stack`)."""
        for budget in self.of_type("aws:budgets/budget:Budget"):
            for cost_filter in budget["inputs"].get("costFilters") or []:
                if cost_filter.get("name") == "TagKeyValue":
                    for value in cost_filter.get("values") or []:
                        return str(value).removeprefix("user:").split("$", 1)[0]
        return None


def _quota(
    service_code: str, quota_code: str, default: float, region: str, clients: ClientFactory
) -> tuple[float, str]:
    """The account's applied quota, else AWS's default for it, else the documented default."""
    quotas = clients("service-quotas", region)
    try:
        return float(
            quotas.get_service_quota(ServiceCode=service_code, QuotaCode=quota_code)["Quota"]["Value"]
        ), "applied"
    except quotas.exceptions.NoSuchResourceException:
        pass
    try:
        answer = quotas.get_aws_default_service_quota(ServiceCode=service_code, QuotaCode=quota_code)
        return float(answer["Quota"]["Value"]), "AWS default"
    except quotas.exceptions.NoSuchResourceException:
        return float(default), "documented default"


def _rules_per_group(needs: _Needs, target: Target, clients: ClientFactory) -> Check:
    name = "security group rules per group"
    ec2 = clients("ec2", target.region)
    managed = {
        pl["PrefixListId"]: int(pl["MaxEntries"])
        for page in ec2.get_paginator("describe_managed_prefix_lists").paginate()
        for pl in page.get("PrefixLists", [])
        if pl.get("MaxEntries")
    }
    heaviest_aws_list = max(managed.values(), default=HEAVIEST_AWS_PREFIX_LIST)

    def weight(prefix_list_id: str) -> int:
        # The offline plan carries a mock id for a list the program looks up: it weighs as the account's heaviest.
        return managed.get(prefix_list_id, heaviest_aws_list)

    counts = needs.rules_per_group(weight)
    if not counts:
        return Check(name, PASS, "the plan creates no security group rules")
    (group, direction), need = max(counts.items(), key=lambda pair: pair[1])
    quota, source = _quota(*RULES_PER_SECURITY_GROUP, target.region, clients)
    detail = f"most in one group: {group} {direction} {need} (prefix lists by max entries); quota {quota:g} ({source})"
    if need <= quota:
        return Check(name, PASS, detail)
    return Check(
        name,
        FAIL,
        detail,
        "request 'Inbound or outbound rules per security group' (L-0EA8095F), or split the group's rules",
    )


def _elastic_ips(needs: _Needs, target: Target, clients: ClientFactory) -> Check:
    in_use = len(clients("ec2", target.region).describe_addresses().get("Addresses", []))
    need = needs.count("aws:ec2/eip:Eip")
    return _quota_against_use("Elastic IPs", ELASTIC_IPS, need, in_use, target, clients, "the NAT gateways")


def _vpcs(needs: _Needs, target: Target, clients: ClientFactory) -> Check:
    ec2 = clients("ec2", target.region)
    in_use = sum(len(page.get("Vpcs", [])) for page in ec2.get_paginator("describe_vpcs").paginate())
    return _quota_against_use(
        "VPCs", VPCS_PER_REGION, needs.count("aws:ec2/vpc:Vpc"), in_use, target, clients, "the stack"
    )


def _quota_against_use(  # noqa: PLR0917 - one call shape for every count-against-quota check
    name: str,
    quota_id: tuple[str, str, int],
    need: int,
    in_use: int,
    target: Target,
    clients: ClientFactory,
    for_what: str,
) -> Check:
    quota, source = _quota(*quota_id, target.region, clients)
    detail = f"{in_use} in use + {need} for {for_what} = {in_use + need}; quota {quota:g} ({source}) in {target.region}"
    if in_use + need <= quota:
        return Check(name, PASS, detail)
    return Check(name, FAIL, detail, f"release unused ones or request a higher quota ({quota_id[1]}) in Service Quotas")


def _fargate_name(spot: bool) -> str:
    return f"Fargate {'Spot' if spot else 'On-Demand'} vCPUs"


def _fargate_vcpus(need: float, spot: bool, target: Target, clients: ClientFactory) -> Check:
    name = _fargate_name(spot)
    quota_id = FARGATE_SPOT_VCPUS if spot else FARGATE_ON_DEMAND_VCPUS
    quota, source = _quota(*quota_id, target.region, clients)
    detail = f"{need:g} vCPUs with every service at its maximum tasks; quota {quota:g} ({source})"
    if need <= quota:
        return Check(name, PASS, detail)
    fix = f"request a higher '{name} resource count' ({quota_id[1]}) in Service Quotas, or lower maxCount"
    return Check(name, FAIL, detail, fix)


def _hosted_zone(target: Target, clients: ClientFactory) -> Check:
    name = f"hosted zone {target.hosted_zone}"
    route53 = clients("route53", "us-east-1")
    wanted = target.hosted_zone.rstrip(".") + "."
    zones = route53.list_hosted_zones_by_name(DNSName=wanted).get("HostedZones", [])
    zone = next((z for z in zones if z["Name"] == wanted and not z.get("Config", {}).get("PrivateZone")), None)
    if zone is None:
        return Check(
            name,
            FAIL,
            "no public hosted zone of that name in this account",
            f"create it: aws route53 create-hosted-zone --name {target.hosted_zone} --caller-reference $(date +%s)",
        )
    servers = sorted(route53.get_hosted_zone(Id=zone["Id"])["DelegationSet"]["NameServers"])
    delegated, where = _delegation(target.hosted_zone, servers, route53, clients)
    detail = f"{zone['Id'].rsplit('/', 1)[-1]}, name servers {', '.join(servers)}; {where}"
    fix = f"set the domain's NS records (at the parent zone or registrar) to {', '.join(servers)}"
    if delegated is None:
        return Check(name, WARN, detail, fix)
    return Check(name, PASS, detail) if delegated else Check(name, FAIL, detail, fix)


def _delegation(zone_name: str, servers: list[str], route53: Any, clients: ClientFactory) -> tuple[bool | None, str]:
    """Delegated when the parent zone in this account, or Route 53 Domains, lists the zone's name servers.

    None: neither is in this account (a registrar or DNS host elsewhere), so it cannot be confirmed here.
    """
    parent = zone_name.rstrip(".").split(".", 1)[1] + "." if zone_name.count(".") >= 2 else None
    if parent:
        for zone in route53.list_hosted_zones_by_name(DNSName=parent).get("HostedZones", []):
            if zone["Name"] != parent:
                continue
            for record in _record_sets(route53, zone["Id"]):
                if record["Name"] == zone_name.rstrip(".") + "." and record["Type"] == "NS":
                    listed = sorted(r["Value"].rstrip(".") for r in record.get("ResourceRecords", []))
                    matches = listed == [server.rstrip(".") for server in servers]
                    return matches, f"parent zone {parent} in this account lists NS {', '.join(listed)}"
            return False, f"parent zone {parent} in this account has no NS record for it"
    domains = clients("route53domains", "us-east-1")
    try:
        detail = domains.get_domain_detail(DomainName=zone_name.rstrip("."))
    except Exception as error:  # noqa: BLE001 - a domain registered elsewhere is not an error of the check
        where = (
            f"not in this account's Route 53 Domains ({type(error).__name__}): confirm the NS where it is registered"
        )
        return None, where
    listed = sorted(ns["Name"].rstrip(".") for ns in detail.get("Nameservers", []))
    matches = listed == [server.rstrip(".") for server in servers]
    return matches, f"its Route 53 Domains registration lists NS {', '.join(listed)}"


def _record_sets(route53: Any, zone_id: str) -> Iterator[dict[str, Any]]:
    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        yield from page.get("ResourceRecordSets", [])


def _cost_allocation_tag(needs: _Needs, clients: ClientFactory) -> Check:
    tag = needs.budget_tag() or "stack"
    name = f"cost allocation tag `{tag}`"
    answer = clients("ce", "us-east-1").list_cost_allocation_tags(TagKeys=[tag], Type="UserDefined")
    status = next((t["Status"] for t in answer.get("CostAllocationTags", []) if t["TagKey"] == tag), None)
    if status == "Active":
        return Check(name, PASS, "active: the budget's tag filter will see the stack's costs")
    return Check(
        name,
        FAIL,
        f"{(status or 'not seen yet').lower()}: the budget filters on it and would stay at $0",
        f"aws ce update-cost-allocation-tags-status --cost-allocation-tags-status TagKey={tag},Status=Active"
        " (from the payer account; a tag is listed once resources carry it)",
    )


def _backup_opt_in(region: str, clients: ClientFactory) -> Check:
    name = f"AWS Backup opt-in in {region}"
    preferences = clients("backup", region).describe_region_settings().get("ResourceTypeOptInPreference", {})
    off = [kind for kind in BACKUP_RESOURCE_TYPES if not preferences.get(kind)]
    if not off:
        return Check(name, PASS, f"{' and '.join(BACKUP_RESOURCE_TYPES)} opted in")
    settings = ",".join(f"{kind}=true" for kind in off)
    return Check(
        name,
        FAIL,
        f"not opted in: {', '.join(off)} (their recovery points would never be taken)",
        f"aws backup update-region-settings --region {region} --resource-type-opt-in-preference {settings}",
    )


def _service_linked_role(clients: ClientFactory) -> Check:
    name = "ECS service-linked role"
    iam = clients("iam", "us-east-1")  # IAM is global
    try:
        iam.get_role(RoleName=ECS_SERVICE_LINKED_ROLE)
    except iam.exceptions.NoSuchEntityException:
        return Check(
            name,
            FAIL,
            f"{ECS_SERVICE_LINKED_ROLE} does not exist",
            "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com",
        )
    return Check(name, PASS, f"{ECS_SERVICE_LINKED_ROLE} exists")
