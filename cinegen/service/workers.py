"""Worker ids: who holds the lease of a running operation.

"<machine>-<pid>-<start>-<random>": `machine` names this kernel and pid namespace, `start` is
the process's start time in clock ticks (so a reused pid is told apart). A lease whose owner
is a process of this machine that no longer runs can be taken over at once, without waiting
for it to expire (a restart after SIGKILL). Where any of it cannot be read (not Linux), the
machine part is random and leases are recovered on expiry only.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from pathlib import Path


def _machine() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return uuid.uuid4().hex[:12]
    return hashlib.sha256(f"{socket.gethostname()}|{boot}|{namespace}".encode()).hexdigest()[:12]


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks after boot), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


_MACHINE = _machine()


def new_worker_id(pid: int | None = None) -> str:
    """A worker id for process `pid` of this machine (this process by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{_MACHINE}-{pid}-{_start_time(pid) or 0}-{uuid.uuid4().hex[:16]}"


def owner_is_dead(owner: str) -> bool:
    """True only for an owner known to be gone: a process of this machine that has exited."""
    parts = owner.split("-")
    if len(parts) != 4 or parts[0] != _MACHINE or not parts[1].isdigit() or parts[2] == "0":
        return False
    return _start_time(int(parts[1])) != parts[2]
