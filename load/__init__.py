"""The load profile (locust) and the per-route CPU measurement the capacity model reads."""
