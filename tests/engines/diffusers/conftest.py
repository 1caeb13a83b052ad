"""A server with the diffusers engine, loading the tiny random-weight checkpoints from disk.

The checkpoints (`tiny_dirs`) and their registry (`registry_file`) are fixtures of
tests/engines/conftest.py; the registry's text is tests/support/diffusers.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# CI installs the `gpu` extra: a missing torch/diffusers must fail these tests, not skip them.
import diffusers  # noqa: F401
import pytest
import torch  # noqa: F401

from tests.support.diffusers import server_env
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def gpu_server(
    registry_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server with the diffusers engine for the module: its pipelines stay warm."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("diffusers-server"), env_extra=server_env(registry_file)
    )
    proc.start(timeout=60)
    yield proc
    proc.stop()
