"""Subnet arithmetic: carving each tier's per-AZ subnets out of the VPC CIDR."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from stack_config.schema import NetworkConfig

TIERS: tuple[str, ...] = ("public", "private", "isolated")


class CidrAllocationError(ValueError):
    """The requested subnets do not fit the VPC."""


def carve(
    vpc: ipaddress.IPv4Network,
    prefix_lengths: Sequence[int],
    taken: Sequence[ipaddress.IPv4Network] = (),
) -> list[ipaddress.IPv4Network]:
    """Allocate one aligned subnet per prefix length, in order, skipping the `taken` ranges."""
    allocated: list[ipaddress.IPv4Network] = []
    cursor = int(vpc.network_address)
    end = int(vpc.broadcast_address)
    for prefix in prefix_lengths:
        if prefix < vpc.prefixlen:
            raise CidrAllocationError(f"a /{prefix} subnet is larger than the /{vpc.prefixlen} VPC")
        size = 2 ** (32 - prefix)
        while True:
            cursor = -(-cursor // size) * size  # align up to the subnet's size
            if cursor + size - 1 > end:
                raise CidrAllocationError(f"no room left in {vpc} for another /{prefix} subnet")
            candidate = ipaddress.IPv4Network((cursor, prefix))
            clash = next((t for t in [*taken, *allocated] if t.overlaps(candidate)), None)
            if clash is None:
                break
            cursor = int(clash.broadcast_address) + 1
        allocated.append(candidate)
        cursor += size
    return allocated


def subnet_plan(network: NetworkConfig, az_count: int) -> dict[str, list[ipaddress.IPv4Network]]:
    """Each tier's subnets in AZ order: its explicit CIDRs, or ones carved from what is left."""
    explicit = {tier: list(getattr(network, tier).cidrs) for tier in TIERS if getattr(network, tier).cidrs is not None}
    taken = [cidr for cidrs in explicit.values() for cidr in cidrs]
    carved_tiers = [tier for tier in TIERS if tier not in explicit]
    prefixes = [getattr(network, tier).prefix_length for tier in carved_tiers for _ in range(az_count)]
    carved = iter(carve(network.vpc_cidr, prefixes, taken))
    return {tier: explicit[tier] if tier in explicit else [next(carved) for _ in range(az_count)] for tier in TIERS}
