"""ACM certificates validated by DNS records in the stack's Route 53 zone."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.naming import Naming

# Validation records change rarely; a short TTL only slows nothing down.
VALIDATION_RECORD_TTL = 300


def hosted_zone_id(zone_name: str, opts: pulumi.InvokeOutputOptions) -> pulumi.Output[str]:
    """The public hosted zone's id, looked up by name (the zone itself is managed outside the stack)."""
    return aws.route53.get_zone_output(name=zone_name, private_zone=False, opts=opts).zone_id


def dns_validated_certificate(
    name: str,
    *,
    parent: pulumi.Resource,
    naming: Naming,
    domain: str,
    alternative_names: Sequence[str],
    zone_id: pulumi.Input[str],
    provider: pulumi.ProviderResource | None = None,
) -> aws.acm.CertificateValidation:
    """A certificate for `domain` (and its alternative names), issued once its DNS records resolve."""
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    certificate = aws.acm.Certificate(
        name,
        domain_name=domain,
        subject_alternative_names=list(alternative_names),
        validation_method="DNS",
        key_algorithm="EC_prime256v1",
        tags=naming.tags(name),
        opts=opts,
    )
    names = [domain, *alternative_names]
    records = [
        aws.route53.Record(
            f"{name}-validation-{index}",
            zone_id=zone_id,
            name=certificate.domain_validation_options[index].resource_record_name,
            type=certificate.domain_validation_options[index].resource_record_type,
            records=[certificate.domain_validation_options[index].resource_record_value],
            ttl=VALIDATION_RECORD_TTL,
            # The edge and the ALB certificates both cover the site's name, and ACM gives one name one validation
            # record per account: each certificate's resource manages that same record. Retained on delete, so
            # removing one certificate (or its layer) leaves the record the other renews with in the zone.
            allow_overwrite=True,
            opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=True),
        )
        for index in range(len(names))
    ]
    return aws.acm.CertificateValidation(
        f"{name}-validation",
        certificate_arn=certificate.arn,
        validation_record_fqdns=[record.fqdn for record in records],
        opts=opts,
    )
