"""The platform's policy pack: assembles the rules of `rules/` and serves them to the Pulumi engine.

The engine starts this as its own process (`python -m pulumi.policy <engine> .` in this directory),
reads the port printed on standard output and talks the analyzer gRPC interface to it.
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import all_policies

PolicyPack(
    name="aws-platform",
    description="Security, availability and recovery rules of the multi-AZ AWS platform (pulumi-aws 7.x).",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=all_policies(),
)
