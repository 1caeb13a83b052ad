"""The cluster of issue 25, every part a separate process (deploy/cluster.py): Redis,
PostgreSQL, moto S3, 2 API nodes, 2 workers. The real google-genai SDK drives 40 operations of
mixed modes through both API nodes while the cluster loses a worker (SIGKILL mid-job, then
restarted), Redis (restarted empty: every queued message lost) and an API node (SIGKILL, then
restarted). At the end every operation is done exactly once (one set of samples, no orphaned
blob in the bucket) and every MP4 decodes (24 fps, its frame count) and downloads from both
nodes (by Range from one). Across nodes too: a queued operation made on api1 and cancelled
through api2 never starts; one deleted through api2 is gone from api1 and from the bucket.

It prints what each fault showed (`pytest -s`): the figures quoted in README "Scale-out".
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from google.genai import types

from cinegen.core.operation import State
from cinegen.store.db import Database
from deploy.cluster import Cluster
from tests.helpers import png_bytes, video_facts, wait_for
from tests.support.cluster import (
    BLOB_PREFIX,
    REQUEUED,
    RESENT,
    database,
    live_blob_keys,
    logged,
    logged_ids,
    operation_ids,
    owner_pid,
    sdk,
)

pytestmark = pytest.mark.xdist_group("cluster")

STANDARD = "veo-3.1-generate-preview"
FAST = "veo-3.1-fast-generate-preview"
FPS = 24
DONE_TIMEOUT = 240.0


def image(color: tuple[int, int, int], square: tuple[int, int] = (40, 40)) -> types.Image:
    return types.Image(image_bytes=png_bytes(320, 180, color, square), mime_type="image/png")


@dataclass
class Job:
    """One operation: what was asked, through which node, and what came of it."""

    mode: str
    model: str
    source: types.GenerateVideosSource
    config: types.GenerateVideosConfig
    seconds: int  # each sample's expected length
    samples: int = 1
    size: tuple[int, int] = (1280, 720)
    node: str = ""
    op: types.GenerateVideosOperation | None = None
    created: float = 0.0
    finished: float | None = None
    answered_by: set[str] = field(default_factory=set)

    @property
    def done_at(self) -> float:
        assert self.finished is not None, self.mode
        return self.finished

    @property
    def id(self) -> str:
        assert self.op is not None and self.op.name
        return self.op.name.rsplit("/", 1)[-1]


def text(i: int, samples: int = 1, model: str = FAST) -> Job:
    config = types.GenerateVideosConfig(duration_seconds=4, number_of_videos=samples)
    source = types.GenerateVideosSource(prompt=f"a lighthouse at dusk, take {i}")
    return Job("text", model, source, config, 4, samples)


def first_frame(i: int) -> Job:
    source = types.GenerateVideosSource(prompt=f"it drifts, {i}", image=image((200, 40, 4 * i)))
    config = types.GenerateVideosConfig(duration_seconds=4)
    return Job("image", FAST, source, config, 4)


def first_and_last(i: int) -> Job:
    source = types.GenerateVideosSource(prompt=f"from red to blue, {i}", image=image((200, 0, 0)))
    last = image((0, 0, 200), (200, 100))
    config = types.GenerateVideosConfig(duration_seconds=8, last_frame=last)
    return Job("first+last", STANDARD, source, config, 8)


def references(i: int) -> Job:
    ref = types.VideoGenerationReferenceImage(image=image((30, 160, 30)), reference_type="asset")
    config = types.GenerateVideosConfig(duration_seconds=8, reference_images=[ref])
    source = types.GenerateVideosSource(prompt=f"the green box on a table, {i}")
    return Job("references", STANDARD, source, config, 8)


def extension(of: Job) -> Job:
    assert of.op is not None and of.op.response and of.op.response.generated_videos
    video = of.op.response.generated_videos[0].video
    source = types.GenerateVideosSource(prompt="and it goes on", video=video)
    return Job("extension", STANDARD, source, types.GenerateVideosConfig(), of.seconds + 7)


def victim() -> Job:
    """A long job (1080p, 8 s): time enough to kill its worker in the middle."""
    config = types.GenerateVideosConfig(duration_seconds=8, resolution="1080p")
    source = types.GenerateVideosSource(prompt="a long tracking shot through a forest")
    return Job("text 1080p", STANDARD, source, config, 8, 1, (1920, 1080))


def mixed(start: int, count: int) -> list[Job]:
    """`count` jobs cycling through the modes; some with 2 or 3 samples."""
    makers: list[Callable[[int], Job]] = [
        lambda i: text(i, samples=1 + i % 3),
        first_frame,
        lambda i: text(i, model=STANDARD),
        first_and_last,
        references,
    ]
    return [makers[i % len(makers)](i) for i in range(start, start + count)]


class Driver:
    """The SDK, one client per API node; requests go round-robin over the nodes that are up."""

    def __init__(self, cluster: Cluster) -> None:
        self.clients = {node.name: sdk(node, cluster.key) for node in cluster.nodes}
        self.up = list(self.clients)
        self._turn = itertools.count()
        self.jobs: list[Job] = []

    def next_node(self) -> str:
        return self.up[next(self._turn) % len(self.up)]

    def create(self, job: Job, node: str | None = None) -> Job:
        job.node = node or self.next_node()
        job.created = time.monotonic()
        job.op = self.clients[job.node].models.generate_videos(
            model=job.model, source=job.source, config=job.config
        )
        self.jobs.append(job)
        return job

    def poll(self, jobs: list[Job]) -> None:
        """One poll of each unfinished job, each through the next node that is up."""
        for job in jobs:
            if job.finished is not None:
                continue
            node = self.next_node()
            assert job.op is not None
            job.op = self.clients[node].operations.get(job.op)
            job.answered_by.add(node)
            if job.op.done:
                job.finished = time.monotonic()

    def wait(self, jobs: list[Job], timeout: float = DONE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while any(job.finished is None for job in jobs):
            assert time.monotonic() < deadline, [j.id for j in jobs if j.finished is None]
            self.poll(jobs)
            time.sleep(0.5)


def node_http(cluster: Cluster, index: int) -> httpx.Client:
    """Plain HTTP to one API node, with the cluster's key."""
    headers = {"x-goog-api-key": cluster.key}
    return httpx.Client(base_url=cluster.nodes[index].url, headers=headers, trust_env=False)


def state(db: Database, job: Job) -> State:
    op = db.get_operation(job.id)
    assert op is not None
    return op.state


def kill_worker_mid_job(cluster: Cluster, db: Database, job: Job) -> tuple[int, float]:
    """SIGKILL the worker running `job` once it reported progress; (its index, restart s)."""

    def running() -> bool:
        op = db.get_operation(job.id)
        return op is not None and op.state == State.RUNNING and op.progress > 0

    wait_for(running, "the victim to run", timeout=120.0)
    pid = owner_pid(db, job.id)
    index = next(i for i, w in enumerate(cluster.pool) if w.pid == pid)
    cluster.pool[index].kill()
    started = time.monotonic()
    cluster.pool[index].start()
    return index, time.monotonic() - started


def check_videos(driver: Driver, cluster: Cluster, tmp_path: Path) -> int:
    """Every sample of every job: downloaded whole through the SDK from api1, by Range from
    api2 (the same bytes), decoded: size, 24 fps, its frame count. The number of videos."""
    first, second = driver.clients["api1"], cluster.nodes[1]
    videos = 0
    with httpx.Client(headers={"x-goog-api-key": cluster.key}, trust_env=False) as http:
        for job in driver.jobs:
            assert job.op is not None
            job.op = first.operations.get(job.op)  # its uris now name api1
            assert job.op.error is None, (job.mode, job.op.error)
            assert job.op.response is not None and job.op.response.generated_videos
            assert len(job.op.response.generated_videos) == job.samples, job.mode
            for k, generated in enumerate(job.op.response.generated_videos):
                assert generated.video is not None and generated.video.uri
                data = first.files.download(file=generated.video)
                path = tmp_path / f"{job.id}-{k}.mp4"
                path.write_bytes(data)
                facts = video_facts(path)
                assert (facts.width, facts.height) == job.size, job.mode
                assert facts.fps == FPS and facts.frames == job.seconds * FPS, job.mode
                uri = httpx.URL(generated.video.uri).copy_with(port=second.port)
                part = http.get(uri, headers={"Range": "bytes=1000-4999"})
                assert part.status_code == 206, part.text
                assert part.headers["content-range"] == f"bytes 1000-4999/{len(data)}"
                assert part.content == data[1000:5000]
                videos += 1
    return videos


def test_cluster_survives_faults_under_mixed_load(cluster: Cluster, tmp_path: Path) -> None:
    db = database(cluster)
    driver = Driver(cluster)
    began = time.monotonic()
    figures: dict[str, object] = {}

    # 1. A worker SIGKILLed in the middle of a job, then started again.
    slow = driver.create(victim(), "api1")
    batch1 = [driver.create(job) for job in mixed(0, 13)]
    killed, restart_s = kill_worker_mid_job(cluster, db, slow)
    killed_at = time.monotonic()
    figures["worker restart s"] = round(restart_s, 1)

    # 2. Redis restarted with its data lost, while jobs wait in its queues.
    batch2 = [driver.create(job) for job in mixed(13, 12)]
    # A queued operation made on api1, cancelled through api2: it never starts.
    extra = text(99)
    cancelled = driver.clients["api1"].models.generate_videos(
        model=extra.model, source=extra.source, config=extra.config
    )
    assert cancelled.name
    with node_http(cluster, 1) as http:
        assert http.post(f"/v1beta/{cancelled.name}:cancel").status_code == 200
    queued = [job for job in driver.jobs if state(db, job) == State.QUEUED]
    redis_wall = time.time()  # the workers' logs stamp wall-clock times
    cluster.redis.restart()
    redis_at = time.monotonic()
    figures["queued when Redis restarted"] = len(queued)
    batch2 += [driver.create(job) for job in mixed(25, 2)]  # sent to the new, empty Redis

    # 3. An API node killed: the other answers every operation, old and new; then restarted.
    driver.wait(batch1[:1])
    cluster.nodes[1].kill()
    driver.up = ["api1"]
    batch3 = [driver.create(extension(batch1[0]))] + [driver.create(j) for j in mixed(27, 7)]
    for job in driver.jobs:  # each operation answers through api1, those api2 created too
        assert job.op is not None
        assert driver.clients["api1"].operations.get(job.op).name == job.op.name
    figures["answered by api1 alone (made on api2)"] = (
        len(driver.jobs),
        sum(1 for job in driver.jobs if job.node == "api2"),
    )
    started = time.monotonic()
    cluster.nodes[1].start()
    figures["api2 restart s"] = round(time.monotonic() - started, 1)
    driver.up = ["api1", "api2"]
    driver.wait(batch1[2:3])
    batch4 = [driver.create(extension(batch1[2]), "api2")] + [
        driver.create(j, "api2") for j in mixed(34, 3)
    ]

    driver.wait(driver.jobs)
    figures["operations"] = len(driver.jobs)
    figures["run s"] = round(time.monotonic() - began, 1)
    figures["victim done s after kill"] = round(slow.done_at - killed_at, 1)
    requeued = logged_ids(cluster.pool, REQUEUED)
    figures["re-queued by the watchdog"] = len(requeued)
    figures["queued at the Redis restart, all done s after"] = round(
        max(job.done_at for job in queued) - redis_at, 1
    )
    resends = logged(cluster.pool, RESENT)
    resent = [op_id for _when, op_id in resends]
    if resends:
        figures["re-sent s after the Redis restart (first, last)"] = (
            round(resends[0][0] - redis_wall, 1),
            round(resends[-1][0] - redis_wall, 1),
        )
    figures["re-sent by the reconciler (sends, operations)"] = (len(resent), len(set(resent)))
    assert len(batch3) + len(batch4) + len(batch2) + len(batch1) + 1 == 40

    print(f"\ncluster figures so far: {figures}")

    # Every operation done exactly once: 40 rows, each succeeded with its one set of samples.
    cancelled_id = cancelled.name.rsplit("/", 1)[-1]
    assert operation_ids(db) == sorted([job.id for job in driver.jobs] + [cancelled_id])
    cancelled_row = db.get_operation(cancelled_id)
    assert cancelled_row is not None and cancelled_row.state == State.CANCELLED
    assert cancelled_row.attempts == 0 and not cancelled_row.samples
    assert driver.clients["api1"].operations.get(cancelled).error is not None
    rows = {job.id: db.get_operation(job.id) for job in driver.jobs}
    file_ids: list[str] = []
    for job in driver.jobs:
        row = rows[job.id]
        assert row is not None and row.state == State.SUCCEEDED, (job.mode, row)
        assert len(row.samples) == job.samples
        file_ids += [sample.file_id for sample in row.samples]
    attempts = {op_id: row.attempts for op_id, row in rows.items() if row is not None}
    assert attempts[slow.id] == 2
    figures["operations run twice"] = sum(1 for n in attempts.values() if n > 1)
    assert len(set(file_ids)) == len(file_ids)
    assert requeued == [slow.id]  # the killed worker's job, and only it
    # What Redis lost was sent again (all but the at most one message each worker held).
    assert len({j.id for j in queued} - set(resent)) <= len(cluster.pool)

    # No orphaned blob: the bucket's videos are exactly the samples, each input folder is an
    # operation's (`inputs/<op>/`, service/inputs.py).
    assert cluster.s3 is not None
    stored = cluster.s3.keys(BLOB_PREFIX)
    videos = [key.removeprefix(BLOB_PREFIX) for key in stored if key.endswith(".mp4")]
    assert sorted(videos) == sorted(live_blob_keys(db))
    assert sorted(key.rsplit("/", 1)[-1].removesuffix(".mp4") for key in videos) == sorted(file_ids)
    inputs = {key.split("/")[2] for key in stored if key.startswith(f"{BLOB_PREFIX}inputs/")}
    assert inputs <= set(operation_ids(db)) and len(inputs) >= 10
    assert len(stored) == len(videos) + sum(
        1 for key in stored if key.startswith(f"{BLOB_PREFIX}inputs/")
    )

    figures["videos"] = check_videos(driver, cluster, tmp_path)

    # A delete through api2 of an operation api1 made: gone from both, and from the bucket.
    gone = next(job for job in batch1[3:] if job.node == "api1")
    row = rows[gone.id]
    assert row is not None and gone.op is not None
    with node_http(cluster, 1) as http:
        assert http.delete(f"/v1beta/{gone.op.name}").status_code == 200
    with node_http(cluster, 0) as http:
        assert http.get(f"/v1beta/{gone.op.name}").status_code == 404
    blobs = cluster.s3.keys(BLOB_PREFIX)
    assert not [key for key in blobs if gone.id in key]  # its inputs
    assert not [key for key in blobs if any(s.file_id in key for s in row.samples)]
    assert len([key for key in blobs if key.endswith(".mp4")]) == len(file_ids) - len(row.samples)

    figures["total s"] = round(time.monotonic() - began, 1)
    print(f"\ncluster figures (worker{killed + 1} killed): {figures}")
