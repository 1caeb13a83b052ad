"""`redis-server` and `cinegen worker` for a test, over deploy/cluster.py's `Redis` and
`Worker` (one implementation of how they start and stop): Redis on 127.0.0.1 and a free port,
in the test's directory, with no persistence, so that `restart()` comes back empty, as a Redis
that lost its data does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.cluster import Redis, Worker


class RedisServer(Redis):
    """A `Redis` in `workdir`, its log `workdir/redis.log`."""

    def __init__(self, workdir: Path) -> None:
        super().__init__("redis", workdir / "redis.log", workdir=workdir)


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir).start()
    try:
        yield server
    finally:
        server.kill()


class WorkerProcess(Worker):
    """`cinegen worker` on a data dir an API node in the test shares (its SQLite file and local
    blobs), its log `<data_dir>/<name>.log`; `start()` again after `kill()` reuses it."""

    def __init__(
        self,
        data_dir: Path,
        broker_url: str,
        models: str = "",
        concurrency: int = 1,
        env_extra: dict[str, str] | None = None,
        name: str = "worker",
        metrics_port: int | None = None,
    ) -> None:
        env = {
            "CINEGEN_BROKER_URL": broker_url,
            "CINEGEN_LOG_FORMAT": "text",
            "CINEGEN_POLL_INTERVAL_SECONDS": "0.2",
            **(env_extra or {}),
        }
        super().__init__(
            name,
            data_dir / f"{name}.log",
            env_base=env,
            data_dir=data_dir,
            models=models,
            concurrency=concurrency,
            metrics_port=metrics_port,
        )
        self.broker_url = broker_url
