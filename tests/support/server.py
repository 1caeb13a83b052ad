"""`cinegen serve` in a subprocess, as a user runs it: its own data directory, a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.cluster import free_port

REPO = Path(__file__).resolve().parents[2]
# Every key `create_key` made and every server's log: at the end of the session, conftest.py
# checks that no key reached a log.
CREATED_KEYS: list[str] = []
SERVER_LOGS: set[Path] = set()


@dataclass
class ServerProcess:
    """`cinegen serve` in a subprocess; `start()` again after `kill()` reuses the data dir."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "CINEGEN_DATA_DIR": str(self.data_dir),
                "CINEGEN_PORT": str(self.port),
                "CINEGEN_HOST": "127.0.0.1",
            }
        )
        env.update(self.env_extra)
        return env

    def start(self, timeout: float = 120.0) -> ServerProcess:
        self.log_path = self.data_dir / "server.log"
        SERVER_LOGS.add(self.log_path)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cinegen.cli", "serve"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v1beta/models", timeout=1).status_code in (200, 401):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def create_key(server: ServerProcess) -> str:
    """A new API key for the server's data dir, made with `cinegen keys create`."""
    result = subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "keys", "create", "--name", "test"],
        env=server.env(),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    CREATED_KEYS.append(result.stdout.strip())
    return result.stdout.strip()
