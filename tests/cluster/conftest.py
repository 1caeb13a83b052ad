"""The `cluster` fixture (tests/support/cluster.py)."""

from tests.support.cluster import cluster  # noqa: F401
