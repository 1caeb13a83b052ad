"""Fixtures of the engine tests: the tiny diffusers checkpoints on disk and their registry.

They live here, not in diffusers/, because the engine contract (test_engine_contract.py) runs
over the diffusers engine too. torch is imported only when a test asks for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.diffusers import registry_toml


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight checkpoints, built from config and saved (tiny.py)."""
    from tests.engines.diffusers.tiny import save_all

    return save_all(tmp_path_factory.mktemp("tiny-checkpoints"))


@pytest.fixture(scope="session")
def registry_file(tiny_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry") / "registry.toml"
    path.write_text(registry_toml(tiny_dirs))
    return path
