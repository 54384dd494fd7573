"""Per-environment defaults, laid under a stack file's own values before validation.

The seeds' cost and availability advice: prod spreads everything over three AZs with a NAT gateway
per AZ, two Aurora readers, two Redis replicas, deletion protection, 7-day database backups and a
cross-region backup copy; staging makes the cheaper choice wherever the architecture stays intact.

ECS Exec is on in staging, where a shell in a task is how problems get debugged, and off in prod,
where a shell reads the task's secrets and acts with its role: prod turns it on per service for an
incident (a deployment, which replaces the tasks) and off again afterwards.
"""

from __future__ import annotations

from typing import Any

PROD: dict[str, Any] = {
    "availabilityZones": 3,
    "network": {"natStrategy": "one_per_az"},
    "services": {
        "minTasksPerAz": 2,
        "api": {
            "cpu": 1024,
            "memory": 2048,
            "desiredCount": 6,
            "minCount": 6,
            "maxCount": 50,
            "deployment": {"strategy": "blue_green", "bakeMinutes": 10},
            "executeCommand": False,
        },
        "worker": {
            "cpu": 512,
            "memory": 1024,
            "desiredCount": 6,
            "minCount": 6,
            "maxCount": 30,
            "executeCommand": False,
        },
    },
    "database": {
        "instanceClass": "db.r7g.large",
        "readerCount": 2,
        "backupRetentionDays": 7,
        "deletionProtection": True,
        "finalSnapshot": True,
    },
    "cache": {"nodeType": "cache.r7g.large", "replicaCount": 2, "snapshotRetentionDays": 7},
    "observability": {"logRetentionDays": 90},
    "recovery": {"rpoMinutes": 15, "rtoMinutes": 60, "backupRetentionDays": 35},
    "budget": {"monthlyUsd": 5000},
}

STAGING: dict[str, Any] = {
    "availabilityZones": 2,
    "network": {"natStrategy": "single"},
    "services": {
        "minTasksPerAz": 1,
        "api": {"cpu": 512, "memory": 1024, "desiredCount": 2, "minCount": 2, "maxCount": 6, "executeCommand": True},
        "worker": {
            "cpu": 256,
            "memory": 512,
            "desiredCount": 2,
            "minCount": 2,
            "maxCount": 4,
            "useSpot": True,
            "executeCommand": True,
        },
    },
    "database": {
        "serverlessV2": {"minAcu": 0.5, "maxAcu": 4},
        "readerCount": 1,
        "backupRetentionDays": 1,
        "deletionProtection": False,
        "finalSnapshot": False,
    },
    "cache": {"nodeType": "cache.t4g.small", "replicaCount": 1, "snapshotRetentionDays": 1},
    "observability": {"logRetentionDays": 14},
    "recovery": {"rpoMinutes": 60, "rtoMinutes": 480, "backupRetentionDays": 7},
    "budget": {"monthlyUsd": 800},
}

PROFILES: dict[str, dict[str, Any]] = {"prod": PROD, "staging": STAGING}


def with_profile(raw: dict[str, Any]) -> dict[str, Any]:
    """The stack file's values laid over its environment's defaults (an unknown environment adds none)."""
    environment = raw.get("environment")
    profile = PROFILES.get(environment) if isinstance(environment, str) else None
    return deep_merge(profile or {}, raw)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
