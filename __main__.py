"""One stack of the multi-AZ reference architecture: validated config in, layers built, outputs out."""

import pulumi
import pulumi_aws as aws

from components.iam import Account
from components.naming import Naming
from components.network import Network, NetworkArgs
from components.security import Security, SecurityArgs
from stack_config.loader import load_stack_config

config = load_stack_config()
naming = Naming(pulumi.get_project(), pulumi.get_stack(), config.environment, config.tags)
provider = aws.Provider(
    "aws",
    region=config.region,
    default_tags=aws.ProviderDefaultTagsArgs(tags=naming.base_tags),
)
in_region = pulumi.ResourceOptions(provider=provider)
account = Account.lookup(config.region, pulumi.InvokeOutputOptions(provider=provider))

security = Security("security", SecurityArgs(naming=naming, account=account), in_region)
network = Network(
    "network",
    NetworkArgs(
        config=config.network,
        availability_zones=config.availability_zones,
        naming=naming,
        account=account,
        log_retention_days=config.observability.log_retention_days,
        logs_key_arn=security.keys["logs"].arn,
    ),
    in_region,
)

pulumi.export("environment", config.environment)
pulumi.export("region", config.region)
pulumi.export("availability_zones", network.zones)
pulumi.export("vpc_id", network.vpc.id)
pulumi.export("public_subnet_ids", network.subnet_ids("public"))
pulumi.export("private_subnet_ids", network.subnet_ids("private"))
pulumi.export("isolated_subnet_ids", network.subnet_ids("isolated"))
pulumi.export("nat_gateway_ids", [nat.id for nat in network.nat_gateways])
pulumi.export("kms_key_arns", {domain: key.arn for domain, key in security.keys.items()})
