"""One stack of the multi-AZ reference architecture: validated config in, a stack context built once, the
layers built from it and from each other (as the README's diagram draws them), outputs out."""

from components.app_services import ROUTED_PATHS, SERVICES, AppLayers, app_services
from components.cache import Cache, CacheArgs
from components.certificates import hosted_zone_id
from components.chaos import chaos_experiments
from components.context import StackContext
from components.database import Database, DatabaseArgs
from components.ecs import AppSecurityGroups, AppSecurityGroupsArgs, Cluster, ClusterArgs
from components.edge import Edge, EdgeArgs
from components.load_balancer import LoadBalancer, LoadBalancerArgs
from components.messaging import Messaging, MessagingArgs
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs
from components.recovery import Budget, BudgetArgs, Recovery, RecoveryArgs
from components.rotation import RotationArgs, SecretRotations
from components.slo import ServiceLevelObjectives, SloArgs
from components.stack_outputs import StackLayers, export_outputs
from components.storage import Storage, StorageArgs
from stack_config.loader import load_stack_config

# Naming, account, the provider's options, the keys by data domain and the log policy: made once, used by all.
stack = StackContext.create(load_stack_config())
opts = stack.opts

network = Network("network", NetworkArgs.for_stack(stack), opts)
# The tasks' security groups come first: each data store admits exactly these.
app_groups = AppSecurityGroups("app", AppSecurityGroupsArgs(stack.naming, network.vpc.id, SERVICES), opts)
clients = list(app_groups.groups.values())
# Messaging owns the alerts topic: every layer's alarms go there.
messaging = Messaging("messaging", MessagingArgs.for_stack(stack), opts)
database = Database("database", DatabaseArgs.for_stack(stack, network, clients, messaging.alerting), opts)
cache = Cache("cache", CacheArgs.for_stack(stack, network, clients, messaging.alerting), opts)
storage = Storage("storage", StorageArgs.for_stack(stack), opts)

zone_id = hosted_zone_id(stack.config.edge.hosted_zone, stack.invoke_opts)
balancing = LoadBalancerArgs.for_stack(
    stack, network, storage, zone_id, routed_paths=ROUTED_PATHS, alerting=messaging.alerting
)
load_balancer = LoadBalancer("load-balancer", balancing, opts)
edge = Edge("edge", EdgeArgs.for_stack(stack, load_balancer, storage, messaging), opts)
# The generated secrets rotate; each Lambda updates the layer that holds the value (cache, ALB rule, CloudFront).
SecretRotations("rotation", RotationArgs.for_stack(stack, cache, load_balancer, edge), opts)
# The assets bucket and the data key admit this distribution alone, so both are written once it exists.
storage.admit_distribution(edge.distribution.arn)
stack.security.admit_distribution(edge.distribution.arn)

compute = Cluster("compute", ClusterArgs.for_stack(stack), opts)
watched = (load_balancer, compute, messaging, database, cache)
observability = Observability("observability", ObservabilityArgs.for_stack(stack, SERVICES, watched), opts)
# The SLOs read the load balancer's and the worker's metrics, not the services: made first, their fast-burn alarms
# roll the API's deployments back and stop the FIS experiments.
slos = ServiceLevelObjectives("slo", SloArgs.for_stack(stack, load_balancer, messaging), opts)
services = app_services(
    stack, AppLayers(network, app_groups, compute, observability, database, cache, messaging, load_balancer, slos)
)

# FIS experiments (staging by default), stopped by the API's rollback alarms and every service's fast burn.
chaos_experiments(
    stack, services, network=network, compute=compute, data=(database, cache), balancer=load_balancer, slos=slos
)
recovery = Recovery("recovery", RecoveryArgs.for_stack(stack), opts)
Budget("budget", BudgetArgs.for_stack(stack, messaging), opts)

export_outputs(
    stack,
    StackLayers(
        network, database, cache, messaging, storage, load_balancer, edge, compute, observability, services, recovery
    ),
)
