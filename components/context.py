"""What every layer of a stack is built with, made once: the config, names and tags, the account, the provider
the layers are created through, the KMS keys by data domain, and how logs are kept."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import Account
from components.naming import LogPolicy, Naming
from components.security import Security, SecurityArgs
from stack_config.schema import PlatformConfig


@dataclass(frozen=True)
class StackContext:
    config: PlatformConfig
    naming: Naming
    account: Account
    # Every layer's options: created in the stack's region through its provider (which sets the default tags).
    opts: pulumi.ResourceOptions
    invoke_opts: pulumi.InvokeOutputOptions
    # The keys per data domain and the generated secrets: the resources the others are encrypted with.
    security: Security
    logs: LogPolicy

    @classmethod
    def create(cls, config: PlatformConfig) -> StackContext:
        naming = Naming(pulumi.get_project(), pulumi.get_stack(), config.environment, config.tags)
        provider = aws.Provider(
            "aws", region=config.region, default_tags=aws.ProviderDefaultTagsArgs(tags=naming.base_tags)
        )
        invoke_opts = pulumi.InvokeOutputOptions(provider=provider)
        account = Account.lookup(config.region, invoke_opts)
        opts = pulumi.ResourceOptions(provider=provider)
        api_key = config.app.notification_api_key
        security = Security(
            "security",
            SecurityArgs(
                naming=naming,
                account=account,
                notification_api_key=pulumi.Output.secret(api_key.get_secret_value()) if api_key else None,
            ),
            opts,
        )
        logs = LogPolicy(config.observability.log_retention_days, security.keys["logs"].arn)
        return cls(config, naming, account, opts, invoke_opts, security, logs)

    @property
    def keys(self) -> dict[str, aws.kms.Key]:
        return self.security.keys
