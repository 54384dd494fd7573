"""Subnet arithmetic: carved subnets never overlap, always fit the VPC, and are reported when they can't."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack_config.cidr import CidrAllocationError, carve, subnet_plan
from stack_config.schema import NetworkConfig

vpcs = st.builds(
    lambda prefix, base: ipaddress.IPv4Network((base << (32 - prefix) & 0xFFFFFFFF, prefix)),
    st.integers(16, 24),
    st.integers(0, 2**16 - 1),
)


@given(vpc=vpcs, prefixes=st.lists(st.integers(16, 28), min_size=1, max_size=18))
def test_carved_subnets_are_aligned_disjoint_and_inside_the_vpc(
    vpc: ipaddress.IPv4Network, prefixes: list[int]
) -> None:
    try:
        subnets = carve(vpc, prefixes)
    except CidrAllocationError:
        return
    assert [subnet.prefixlen for subnet in subnets] == prefixes
    for index, subnet in enumerate(subnets):
        assert subnet.subnet_of(vpc)
        assert all(not subnet.overlaps(other) for other in subnets[:index])


@given(vpc=vpcs, prefixes=st.lists(st.integers(16, 28), min_size=1, max_size=18))
def test_largest_first_carving_fails_exactly_when_the_sizes_exceed_the_vpc(
    vpc: ipaddress.IPv4Network, prefixes: list[int]
) -> None:
    largest_first = sorted(prefixes)
    fits = min(prefixes) >= vpc.prefixlen and sum(2 ** (32 - p) for p in prefixes) <= vpc.num_addresses
    try:
        carve(vpc, largest_first)
    except CidrAllocationError:
        assert not fits
    else:
        assert fits


@given(vpc=vpcs, extra_bits=st.integers(0, 6))
def test_carving_fills_the_vpc_and_then_refuses(vpc: ipaddress.IPv4Network, extra_bits: int) -> None:
    prefix = vpc.prefixlen + extra_bits
    capacity = 2**extra_bits
    assert len(carve(vpc, [prefix] * capacity)) == capacity
    with pytest.raises(CidrAllocationError):
        carve(vpc, [prefix] * (capacity + 1))


@given(az_count=st.integers(1, 6))
def test_default_tiers_fit_a_slash_16_for_any_az_count(az_count: int) -> None:
    plan = subnet_plan(NetworkConfig(), az_count)
    every = [cidr for tier in plan.values() for cidr in tier]
    assert all(len(tier) == az_count for tier in plan.values())
    assert len(set(every)) == len(every)
    assert all(not a.overlaps(b) for i, a in enumerate(every) for b in every[:i])


def test_carving_skips_explicit_ranges() -> None:
    vpc = ipaddress.IPv4Network("10.0.0.0/16")
    taken = [ipaddress.IPv4Network("10.0.0.0/24"), ipaddress.IPv4Network("10.0.1.0/24")]
    assert carve(vpc, [24, 24], taken) == [ipaddress.IPv4Network("10.0.2.0/24"), ipaddress.IPv4Network("10.0.3.0/24")]
