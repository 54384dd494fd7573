"""The SSM agent sidecar AWS FIS needs for its `aws:ecs:task-*` actions (database-latency), as the FIS user guide's
"Use the AWS FIS aws:ecs:task actions" page documents it: at start it creates an SSM activation with the task role,
registers the task as a managed instance tagged with its task ARN (FIS finds its targets by that tag), runs the
agent, and on SIGTERM deletes the activation and deregisters the instance.

It runs as root with a writable root filesystem (it installs its tools and the agent writes its registration), the
one container of the stack that does; the policy pack admits it by name (`rules.chaos.FIS_SSM_AGENT`) only where
the stack's policy config opts in to fault injection. Built only when `database-latency` is configured.
"""

from __future__ import annotations

import pulumi

from components.iam import Statement

FIS_AGENT = "amazon-ssm-agent"
# AWS's image, pinned (the guide's example uses `latest`, which would change under a deployed task definition).
FIS_AGENT_REPOSITORY = "public.ecr.aws/amazon-ssm-agent/amazon-ssm-agent"
FIS_AGENT_IMAGE = f"{FIS_AGENT_REPOSITORY}:3.2.2222.0"
FIS_AGENT_CPU, FIS_AGENT_MEMORY_RESERVATION = 64, 128
# The environment variable the guide's script reads: the role SSM gives the registered task.
ROLE_NAME_VARIABLE = "MANAGED_INSTANCE_ROLE_NAME"
# The managed-instance tags the script sets; FIS resolves `aws:ecs:task` targets through ECS_TASK_ARN.
TASK_ARN_TAG = "ECS_TASK_ARN"
SIDECAR_TAG = "FAULT_INJECTION_SIDECAR"
MANAGED_INSTANCE_POLICY = "AmazonSSMManagedInstanceCore"
SSM_PRINCIPAL = "ssm.amazonaws.com"

# The guide's script, one step a line (the same calls, in the same order). The image's package manager is dnf on
# Amazon Linux 2023 and yum on older tags; either installs the three tools the script uses.
REGISTRATION_SCRIPT = "; ".join(
    (
        "set -e",
        "PKG=$(command -v dnf || command -v yum)",
        "$PKG install -y jq procps awscli",
        "term_handler() {"
        " aws ssm delete-activation --activation-id $ACTIVATION_ID --region $ECS_TASK_REGION"
        ' || echo "activation $ACTIVATION_ID not deleted" 1>&2;'
        " MANAGED_INSTANCE_ID=$(jq -e -r .ManagedInstanceID /var/lib/amazon/ssm/registration);"
        " aws ssm deregister-managed-instance --instance-id $MANAGED_INSTANCE_ID --region $ECS_TASK_REGION"
        ' || echo "managed instance $MANAGED_INSTANCE_ID not deregistered" 1>&2;'
        " kill -SIGTERM $SSM_AGENT_PID; }",
        "trap term_handler SIGTERM SIGINT",
        f'[[ -n ${ROLE_NAME_VARIABLE} ]] || {{ echo "{ROLE_NAME_VARIABLE} not set" 1>&2; exit 1; }}',
        '[[ -n $ECS_CONTAINER_METADATA_URI_V4 ]] || { echo "no ECS task metadata" 1>&2; exit 1; }',
        'TASK_METADATA=$(curl -s "${ECS_CONTAINER_METADATA_URI_V4}/task")',
        "ECS_TASK_AVAILABILITY_ZONE=$(echo $TASK_METADATA | jq -e -r .AvailabilityZone)",
        "ECS_TASK_ARN=$(echo $TASK_METADATA | jq -e -r .TaskARN)",
        "ECS_TASK_REGION=$(echo $ECS_TASK_AVAILABILITY_ZONE | sed 's/.$//')",
        f"ACTIVATION=$(aws ssm create-activation --iam-role ${ROLE_NAME_VARIABLE} --registration-limit 1"
        " --tags Key=ECS_TASK_AVAILABILITY_ZONE,Value=$ECS_TASK_AVAILABILITY_ZONE"
        f" Key={TASK_ARN_TAG},Value=$ECS_TASK_ARN Key={SIDECAR_TAG},Value=true --region $ECS_TASK_REGION)",
        "ACTIVATION_ID=$(echo $ACTIVATION | jq -e -r .ActivationId)",
        "amazon-ssm-agent -register -code $(echo $ACTIVATION | jq -e -r .ActivationCode) -id $ACTIVATION_ID"
        " -region $ECS_TASK_REGION",
        "amazon-ssm-agent & SSM_AGENT_PID=$!",
        "wait $SSM_AGENT_PID",
    )
)


def registration_statements(cluster_arn: pulumi.Input[str], role_arn: pulumi.Input[str]) -> list[Statement]:
    """What the task role needs for the sidecar: activations and tags only for this cluster's tasks, the
    managed-instance role passed only to SSM, and deregistration only of this cluster's managed instances."""
    tasks = pulumi.Output.from_input(cluster_arn).apply(lambda arn: arn.replace(":cluster/", ":task/") + "/*")
    this_clusters_tasks = {"StringLike": {f"aws:RequestTag/{TASK_ARN_TAG}": tasks}}
    return [
        # CreateActivation takes no resource; the tags it is asked to set name one of this cluster's tasks.
        Statement(
            "FisAgentActivates",
            ("ssm:CreateActivation", "ssm:AddTagsToResource"),
            ["*"],
            conditions=this_clusters_tasks,
        ),
        Statement(
            "FisAgentPassesInstanceRole",
            ("iam:PassRole",),
            [role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SSM_PRINCIPAL}},
        ),
        Statement(
            "FisAgentDeregisters",
            ("ssm:DeregisterManagedInstance",),
            [pulumi.Output.from_input(cluster_arn).apply(_managed_instances)],
            conditions={"StringLike": {f"ssm:resourceTag/{TASK_ARN_TAG}": tasks}},
        ),
        # DeleteActivation has no resource type and no condition key (Service Authorization Reference).
        Statement("FisAgentDeletesActivation", ("ssm:DeleteActivation",), ["*"]),
    ]


def _managed_instances(cluster_arn: str) -> str:
    """`arn:<partition>:ssm:<region>:<account>:managed-instance/*` in the cluster's region and account."""
    parts = cluster_arn.split(":")
    return ":".join([*parts[:2], "ssm", *parts[3:5], "managed-instance/*"])
