"""Recovery and cost: AWS Backup of the stack's stateful resources, and the monthly cost budget."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.iam import Account, policy_document, service_trust_policy
from components.naming import BACKUP_TAG, Naming, child_options
from components.security import KEY_DELETION_WINDOW_DAYS, KeyDomain, key_statements
from stack_config.schema import BudgetConfig, RecoveryConfig

if TYPE_CHECKING:
    from components.context import StackContext
    from components.messaging import Messaging

# AWS Backup's managed policies for its service role: backups and restores, and S3's own pair.
BACKUP_MANAGED_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
)
# A job that has not started within an hour, or finished within eight, is reported as failed.
BACKUP_START_WINDOW_MINUTES = 60
BACKUP_COMPLETION_WINDOW_MINUTES = 480
BUDGET_NOTIFICATION_TYPES = ("ACTUAL", "FORECASTED")
# AWS Backup names vaults, plans and selections in 50 characters at most; Budgets names budgets in 100.
BACKUP_NAME_MAX_LENGTH = 50
BUDGET_NAME_MAX_LENGTH = 100
# Services that use the copy-region key: AWS Backup itself encrypts the copies of resources it fully
# manages (S3); an Aurora recovery point is an RDS cluster snapshot, which RDS copies into the region
# (CopyDBClusterSnapshot with the copy vault's key), so RDS calls KMS there on the backup role's behalf.
COPY_KEY_SERVICES = ("backup", "rds")


@dataclass(frozen=True)
class RecoveryArgs:
    config: RecoveryConfig
    naming: Naming
    account: Account
    data_key_arn: pulumi.Input[str]
    # A key in `config.copyRegion` for the copy vault; None: the component creates one there.
    copy_key_arn: pulumi.Input[str] | None = None

    @classmethod
    def for_stack(cls, stack: StackContext) -> RecoveryArgs:
        return cls(stack.config.recovery, stack.naming, stack.account, stack.keys["data"].arn)


class Recovery(pulumi.ComponentResource):
    """An encrypted vault, a daily plan selecting every resource tagged `BACKUP_TAG=<prefix>`,
    and, when `copyRegion` is set, a copy of each recovery point to a vault in that region."""

    vault: aws.backup.Vault
    plan: aws.backup.Plan
    selection: aws.backup.Selection
    role: aws.iam.Role
    copy_vault: aws.backup.Vault | None

    def __init__(self, name: str, args: RecoveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:recovery:Recovery", name, None, opts)
        config, naming = args.config, args.naming
        self.vault = aws.backup.Vault(
            f"{name}-vault",
            name=naming.name("backup", max_length=BACKUP_NAME_MAX_LENGTH),
            kms_key_arn=args.data_key_arn,
            tags=naming.tags("backup"),
            opts=child_options(self),
        )
        self.copy_vault = self._copy_vault(name, args, config.copy_region) if config.copy_region else None
        lifecycle = aws.backup.PlanRuleLifecycleArgs(delete_after=config.backup_retention_days)
        copy_actions = (
            [
                aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=self.copy_vault.arn,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=config.backup_retention_days),
                )
            ]
            if self.copy_vault is not None
            else None
        )
        self.plan = aws.backup.Plan(
            f"{name}-plan",
            name=naming.name("backup", max_length=BACKUP_NAME_MAX_LENGTH),
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="daily",
                    target_vault_name=self.vault.name,
                    schedule=config.backup_schedule,
                    start_window=BACKUP_START_WINDOW_MINUTES,
                    completion_window=BACKUP_COMPLETION_WINDOW_MINUTES,
                    lifecycle=lifecycle,
                    copy_actions=copy_actions,
                    recovery_point_tags=naming.base_tags,
                )
            ],
            tags=naming.tags("backup"),
            opts=child_options(self),
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=service_trust_policy("backup", args.account),
            tags=naming.tags("backup"),
            opts=child_options(self),
        )
        for policy in BACKUP_MANAGED_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy.rsplit('/', 1)[-1]}",
                role=self.role.name,
                policy_arn=args.account.managed_policy_arn(policy),
                opts=child_options(self),
            )
        self.selection = aws.backup.Selection(
            f"{name}-selection",
            name=naming.name("stateful", max_length=BACKUP_NAME_MAX_LENGTH),
            plan_id=self.plan.id,
            iam_role_arn=self.role.arn,
            selection_tags=[
                aws.backup.SelectionSelectionTagArgs(type="STRINGEQUALS", key=BACKUP_TAG, value=naming.prefix)
            ],
            opts=child_options(self),
        )
        self.register_outputs(
            {
                "vault_arn": self.vault.arn,
                "plan_id": self.plan.id,
                "copy_vault_arn": self.copy_vault.arn if self.copy_vault else None,
                "rpo_minutes": config.rpo_minutes,
                "rto_minutes": config.rto_minutes,
            }
        )

    def _copy_vault(self, name: str, args: RecoveryArgs, region: str) -> aws.backup.Vault:
        naming = args.naming
        provider = aws.Provider(
            f"{name}-{region}",
            region=region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=naming.base_tags),
            opts=child_options(self),
        )
        in_copy_region = child_options(self, provider=provider)
        key_arn = (
            args.copy_key_arn if args.copy_key_arn is not None else self._copy_key(name, args, region, in_copy_region)
        )
        return aws.backup.Vault(
            f"{name}-copy-vault",
            name=naming.name("backup-copy", max_length=BACKUP_NAME_MAX_LENGTH),
            kms_key_arn=key_arn,
            tags=naming.tags("backup-copy"),
            opts=in_copy_region,
        )

    def _copy_key(self, name: str, args: RecoveryArgs, region: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        """A vault encrypts with a key of its own region, and the data key is single-region: the copies get
        their own customer-managed key there, administered like the security layer's and used only by Backup."""
        naming, account = args.naming, args.account
        copy_domain = KeyDomain("backup-copy", f"AWS Backup copies in {region}", via_services=COPY_KEY_SERVICES)
        key = aws.kms.Key(
            f"{name}-copy-key",
            description=f"{naming.prefix}: {copy_domain.description}",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=policy_document(*key_statements(copy_domain, replace(account, region=region))),
            tags=naming.tags("backup-copy", "key"),
            opts=opts,
        )
        aws.kms.Alias(
            f"{name}-copy-key-alias",
            name=f"alias/{naming.name('backup-copy')}",
            target_key_id=key.key_id,
            opts=opts,
        )
        return key.arn


@dataclass(frozen=True)
class BudgetArgs:
    config: BudgetConfig
    naming: Naming
    alerts_topic_arn: pulumi.Input[str]

    @classmethod
    def for_stack(cls, stack: StackContext, messaging: Messaging) -> BudgetArgs:
        return cls(stack.config.budget, stack.naming, messaging.alerts_topic.arn)


class Budget(pulumi.ComponentResource):
    """A monthly cost budget alerting the alerts topic at each threshold, on actual and on forecast cost.

    The alerts topic's policy lets budgets.amazonaws.com publish (components.messaging).
    """

    budget: aws.budgets.Budget

    def __init__(self, name: str, args: BudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:recovery:Budget", name, None, opts)
        config, naming = args.config, args.naming
        self.budget = aws.budgets.Budget(
            f"{name}-monthly",
            name=naming.name("monthly-cost", max_length=BUDGET_NAME_MAX_LENGTH),
            budget_type="COST",
            limit_amount=str(float(config.monthly_usd)),
            limit_unit="USD",
            time_unit="MONTHLY",
            # The provider's default tags put `stack` on every resource; as an active cost-allocation
            # tag it scopes the budget to this stack's own spend.
            cost_filters=(
                [aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:stack${naming.stack}"])]
                if config.scope_to_stack
                else None
            ),
            notifications=[
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    notification_type=kind,
                    threshold=threshold,
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[args.alerts_topic_arn],
                )
                for threshold in config.alert_thresholds_percent
                for kind in BUDGET_NOTIFICATION_TYPES
            ],
            tags=naming.tags("monthly-cost"),
            opts=child_options(self),
        )
        self.register_outputs({"budget_name": self.budget.name, "limit_usd": config.monthly_usd})
