"""A size-limited filesystem for a test: a tmpfs mounted by the test itself (as root), or a
clean skip that says why not."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def mounted_tmpfs(mount: Path, size_bytes: int) -> Iterator[Path]:
    """`mount` as a tmpfs of `size_bytes`, unmounted afterwards; the test is skipped where
    no tmpfs can be mounted (not root, or no mount permission in this container)."""
    if os.name != "posix" or shutil.which("mount") is None:
        pytest.skip("no mount(8) here: a full disk cannot be made for this test")
    if os.geteuid() != 0:
        pytest.skip("not root: a size-limited tmpfs cannot be mounted for this test")
    mount.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)
