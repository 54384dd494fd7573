"""The compute layer on ECS: the cluster (`cluster`), what a task runs (`container`), the Fargate service
(`service`) and how it scales (`autoscaling`)."""

from components.ecs.cluster import AppSecurityGroups, AppSecurityGroupsArgs, Cluster, ClusterArgs
from components.ecs.container import ContainerSpec, ImageSource, content_image_tag
from components.ecs.service import Dependency, FargateService, ServiceArgs

__all__ = [
    "AppSecurityGroups",
    "AppSecurityGroupsArgs",
    "Cluster",
    "ClusterArgs",
    "ContainerSpec",
    "Dependency",
    "FargateService",
    "ImageSource",
    "ServiceArgs",
    "content_image_tag",
]
