"""A cinegen cluster on this machine, every part its own process on loopback: Redis (the
broker), PostgreSQL (the one truth), moto's S3 server (the blob store; or a shared local
directory with --blobs local), N API nodes (`cinegen serve`, CINEGEN_WORKERS=0) and M workers
(`cinegen worker`). `make cluster` runs it for a user to try scale-out; the cluster test
(tests/cluster/) starts the same topology through this module and breaks parts of it, and
the test fixtures (tests/support/redis.py, postgres.py, s3.py) start single servers with the
same classes: one implementation of how each server starts, answers, stops and restarts.

Everything lives under one root directory (a temp dir by default): each process's log is
`<root>/logs/<name>.log`, each cinegen process has its own data dir `<root>/<name>/` (as on
separate machines: they share only the database, the broker and the store). Ctrl-C stops it all.

    python deploy/cluster.py [--api-nodes 2] [--workers 2] [--blobs s3|local] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKER_READY = "cinegen worker: ready"  # the worker's log line once its consumer runs
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# Fixed dummy credentials: moto accepts any, and none of them ever leaves loopback.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "cinegen-cluster",
    "AWS_SECRET_ACCESS_KEY": "cinegen-cluster",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
PG_OPTIONS = "-c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=32MB"
# A throwaway cluster needs no durability; a user's try-out neither.
PG_FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
PG_TEMPLATE = "cinegen_template"  # a migrated database that `create_database` copies


class ClusterError(RuntimeError):
    """A part of the cluster did not start; the message holds the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    """Poll `check` until true; ClusterError with the log's tail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise ClusterError(f"{what} did not start in {timeout:.0f} s:\n{tail(log)}")


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


@dataclass
class Process:
    """A child process writing to its own log file; `start()` again after `kill()`."""

    name: str
    log_path: Path
    proc: subprocess.Popen | None = None

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                args,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,  # Ctrl-C reaches only the script, which stops all
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def signal(self, sig: int) -> None:
        """Send `sig` (SIGSTOP/SIGCONT: a hung process and its recovery)."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def check_alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ClusterError(
                f"{self.name} exited ({self.proc.returncode}):\n{tail(self.log_path)}"
            )
        return True

    def kill(self) -> None:
        """SIGKILL: no handler runs, as in a crash or a lost machine."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)  # a stopped process dies on SIGKILL too
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a worker ends its running job first), SIGKILL after `timeout`."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)  # a stopped process handles SIGTERM late
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Redis(Process):
    """redis-server without persistence (`--save "" --appendonly no`): `stop()` keeps nothing
    and `restart()` comes back empty on the same port, every message lost."""

    port: int = field(default_factory=free_port)
    workdir: Path = Path(".")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.spawn(
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port)]
            + ["--dir", str(self.workdir), "--save", "", "--appendonly", "no"]
            + ["--protected-mode", "yes"]
        )
        ready = lambda: self.check_alive() and self.ping()  # noqa: E731
        wait_until(ready, timeout, "redis-server", self.log_path)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def restart(self) -> None:
        """Killed and started again on the same port, with no data."""
        self.kill()
        self.start()


def pg_command(name: str) -> str:
    """A PostgreSQL server program: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if not versions:
        raise ClusterError(f"{name} not found: install PostgreSQL (Debian: apt install postgresql)")
    return str(versions[-1])


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user."""
    args = [pg_command(args[0]), *args[1:]]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Postgres(Process):
    """A PostgreSQL cluster in `workdir` (initdb at the first start), with the database
    `database` (none if empty). As root, the workdir must be one the `postgres` user can reach
    (a fresh temp dir: `Cluster` makes one), and its log lives in it. `stop()`/`start()` keep
    data and port (an outage); `create_database()` gives a test a fresh one, copied from a
    migrated template."""

    port: int = field(default_factory=free_port)
    workdir: Path = Path(".")
    database: str = "cinegen"
    _template_ready: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return self.database_url(self.database or "postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def _initdb(self, data: Path) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.workdir, user.pw_uid, user.pw_gid)
        self._run(["initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(_as_postgres(args), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ClusterError(f"{args[0]}: {done.stdout}{done.stderr}\n{tail(self.log_path)}")

    def start(self) -> Self:
        data = self.workdir / "data"
        fresh = not data.exists()
        if fresh:
            self._initdb(data)
        options = f"-p {self.port} -k {self.workdir} {PG_OPTIONS} {PG_FAST}"
        self._run(
            ["pg_ctl", "start", "-w", "-t", "60", "-D", str(data), "-l", str(self.log_path)]
            + ["-o", options]
        )
        if fresh and self.database:
            self.admin(f'CREATE DATABASE "{self.database}"')
        return self

    @property
    def alive(self) -> bool:
        return (self.workdir / "data" / "postmaster.pid").exists()

    def kill(self) -> None:
        """An immediate shutdown: no checkpoint, as in a crash."""
        self._stop("immediate")

    def stop(self, timeout: float = 15.0) -> None:
        """A fast shutdown: open connections are cut, as in a real outage."""
        self._stop("fast")

    def restart(self) -> None:
        """Stopped and started again on the same port, with its data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stopped, and its directory (data and log) removed."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop(self, mode: str) -> None:
        if not self.alive:
            return
        data = str(self.workdir / "data")
        try:
            self._run(["pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", data])
        except ClusterError:
            if self.alive:  # a server that had already gone is what was asked
                raise

    def admin(self, sql: str) -> None:
        """One statement on the `postgres` database, outside a transaction (CREATE DATABASE)."""
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, *, migrated: bool = True) -> str:
        """A new database's URL: a copy of the migrated template, or empty."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        if migrated:
            self._ensure_template()
            self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{PG_TEMPLATE}"')
        else:
            self.admin(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _ensure_template(self) -> None:
        """Migrate one database to head, once: copying it is faster than migrating each."""
        if self._template_ready:
            return
        from cinegen.store.db import Database

        self.admin(f'CREATE DATABASE "{PG_TEMPLATE}"')
        db = Database(self.database_url(PG_TEMPLATE))
        try:
            db.migrate()
        finally:
            db.engine.dispose()
        self._template_ready = True


@dataclass
class S3(Process):
    """moto's S3 server (state in memory) with one bucket, `bucket_name` (none if empty)."""

    port: int = field(default_factory=free_port)
    bucket_name: str = "cinegen"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        server = shutil.which("moto_server", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        if server is None:
            raise ClusterError("moto_server is not installed (pip install 'moto[server]')")
        self.spawn([server, "-H", "127.0.0.1", "-p", str(self.port)])
        wait_until(lambda: self.check_alive() and self._up(), timeout, "moto_server", self.log_path)
        if self.bucket_name:
            self.client().create_bucket(Bucket=self.bucket_name)
        return self

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/moto-api/", timeout=1, trust_env=False).is_success
        except httpx.HTTPError:
            return False

    def client(self, endpoint: str | None = None) -> Any:
        """A boto3 S3 client on the server (or on `endpoint`, a proxy in front of it), with
        the cluster's dummy credentials."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.url,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def new_bucket(self) -> str:
        """A new, empty bucket's name."""
        name = f"cinegen-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, prefix: str = "", bucket: str = "") -> list[str]:
        """Every object key under `prefix` in `bucket` (default: `bucket_name`), sorted."""
        pages = self.client().get_paginator("list_objects_v2")
        found = []
        for page in pages.paginate(Bucket=bucket or self.bucket_name, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return sorted(found)


@dataclass
class Node(Process):
    """A cinegen process (`cinegen serve` or `cinegen worker`) with its own data dir."""

    env_base: dict[str, str] = field(default_factory=dict)
    data_dir: Path = Path(".")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env_base)
        env["CINEGEN_DATA_DIR"] = str(self.data_dir)
        return env

    def cinegen(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cinegen.cli", *args]


@dataclass
class ApiNode(Node):
    """`cinegen serve` with no worker threads: jobs go to the broker."""

    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            {"CINEGEN_HOST": "127.0.0.1", "CINEGEN_PORT": str(self.port), "CINEGEN_WORKERS": "0"}
        )
        return env

    def start(self, timeout: float = 120.0) -> Self:
        """Started, and answering HTTP (on the same port as before after a kill)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spawn(self.cinegen("serve"), self.env())
        wait_until(lambda: self.check_alive() and self._up(), timeout, self.name, self.log_path)
        return self

    def _up(self) -> bool:
        try:
            answer = httpx.get(f"{self.url}/v1beta/models", timeout=1, trust_env=False)
        except httpx.HTTPError:
            return False
        return answer.status_code in (200, 401)


@dataclass
class Worker(Node):
    """`cinegen worker`: consumes the queues of `models` (all its engines serve by default)."""

    models: str = ""
    concurrency: int = 1
    metrics_port: int | None = None  # GET /metrics on loopback at this port (none by default)

    def start(self, timeout: float = 120.0) -> Self:
        """Started, and consuming once its log says so."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        start_at = len(self.log())
        args = self.cinegen("worker", "--concurrency", str(self.concurrency))
        if self.models:
            args += ["--models", self.models]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port)]
        self.spawn(args, self.env())
        ready = lambda: self.check_alive() and WORKER_READY in self.log()[start_at:]  # noqa: E731
        wait_until(ready, timeout, self.name, self.log_path)
        return self


@dataclass
class Cluster:
    """The whole topology under `root`; `start()` brings it up in order, `close()` stops it
    all (whatever state a test left it in)."""

    root: Path
    api_nodes: int = 2
    workers: int = 2
    blobs: str = "s3"  # "s3" (moto) or "local" (a directory every process shares)
    env_extra: dict[str, str] = field(default_factory=dict)
    key_options: tuple[str, ...] = ()  # `cinegen keys create` options, e.g. limits
    redis: Redis = field(init=False)
    postgres: Postgres = field(init=False)
    s3: S3 | None = field(init=False, default=None)
    nodes: list[ApiNode] = field(init=False, default_factory=list)
    pool: list[Worker] = field(init=False, default_factory=list)
    key: str = field(init=False, default="")
    # Every process must share it: webhook secrets are encrypted at rest with it.
    secret: str = field(init=False, default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        logs = self.root / "logs"
        self.redis = Redis("redis", logs / "redis.log", workdir=self.root / "redis")
        # As root, PostgreSQL's dir must be reachable by the `postgres` user: a temp dir of
        # its own (a test's tmp_path is private to root).
        pg_dir = Path(tempfile.mkdtemp(prefix="cinegen-cluster-pg-"))
        self.postgres = Postgres("postgres", pg_dir / "postgres.log", workdir=pg_dir)
        if self.blobs == "s3":
            self.s3 = S3("s3", logs / "s3.log")
        env = self.env()
        for i in range(self.api_nodes):
            name = f"api{i + 1}"
            self.nodes.append(
                ApiNode(name, logs / f"{name}.log", env_base=env, data_dir=self.root / name)
            )
        for i in range(self.workers):
            name = f"worker{i + 1}"
            self.pool.append(
                Worker(name, logs / f"{name}.log", env_base=env, data_dir=self.root / name)
            )

    @property
    def blob_url(self) -> str:
        return "s3://cinegen/videos-store/" if self.s3 else str(self.root / "blobs")

    def env(self) -> dict[str, str]:
        """What every cinegen process of the cluster shares."""
        env = {
            "CINEGEN_BROKER_URL": self.redis.url,
            "CINEGEN_DATABASE_URL": self.postgres.url,
            "CINEGEN_BLOB_URL": self.blob_url,
            "CINEGEN_LOG_FORMAT": "text",
            "CINEGEN_WEBHOOK_SECRET_KEY": self.secret,
            **AWS_ENV,
        }
        if self.s3:
            env["CINEGEN_S3_ENDPOINT_URL"] = self.s3.url
        env.update(self.env_extra)
        return env

    def start(self) -> Cluster:
        self.redis.start()
        self.postgres.start()
        if self.s3:
            self.s3.start()
        admin = Node(
            "admin",
            self.root / "logs" / "admin.log",
            env_base=self.env(),
            data_dir=self.root / "admin",
        )
        self._run(admin, "migrate")
        self.key = self._run(admin, "keys", "create", "--name", "cluster", *self.key_options)
        self.key = self.key.strip()
        for node in self.nodes:
            node.start()
        for worker in self.pool:
            worker.start()
        return self

    def _run(self, node: Node, *args: str) -> str:
        """A one-shot cinegen command on the cluster's settings; its stdout."""
        node.data_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            node.cinegen(*args), env=node.env(), capture_output=True, text=True, cwd=REPO
        )
        if done.returncode != 0:
            raise ClusterError(f"cinegen {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def close(self) -> None:
        """Workers first (their running jobs end), then the API nodes, then the services."""
        for part in [*self.pool, *self.nodes]:
            part.stop()
        for service in (self.s3, self.redis):
            if service is not None:
                service.stop()
        self.postgres.close()


def banner(cluster: Cluster) -> str:
    """What a user needs to talk to the cluster."""
    lines = ["cinegen cluster is up:"]
    lines += [f"  API node {node.name}: {node.url}" for node in cluster.nodes]
    lines += [f"  API key: {cluster.key}"]
    lines += [f"  workers: {', '.join(w.name for w in cluster.pool)}"]
    lines += [f"  broker:   {cluster.redis.url}", f"  database: {cluster.postgres.url}"]
    store = f"{cluster.blob_url} at {cluster.s3.url}" if cluster.s3 else cluster.blob_url
    lines += [f"  blobs:    {store}", f"  logs:     {cluster.root / 'logs'}"]
    first = cluster.nodes[0].url if cluster.nodes else ""
    lines += [
        "Try it:",
        f"  cinegen generate 'a lighthouse at dusk' --server {first} --key {cluster.key}",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-nodes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--blobs", choices=["s3", "local"], default="s3")
    parser.add_argument("--root", type=Path, default=None, help="default: a new temp dir")
    args = parser.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="cinegen-cluster-"))
    cluster = Cluster(root.resolve(), args.api_nodes, args.workers, args.blobs)
    try:
        cluster.start()
        print(banner(cluster), flush=True)
        for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too where it was ignored
            signal.signal(signum, _interrupt)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    except ClusterError as exc:
        print(f"cinegen cluster: {exc}", file=sys.stderr)
        return 1
    finally:
        print("cinegen cluster: stopping", flush=True)
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
