"""The load tests run the profile against the end-to-end tests' local runtime (the same launcher, per test)."""

from tests.e2e.conftest import make_stack

__all__ = ["make_stack"]
