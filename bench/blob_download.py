"""Reading a video out of the S3 blob store, as a download does, against a plain GetObject.

Starts moto_server on loopback (tests/support/s3.py), stores one blob, then reads it whole in
1 MiB reads (what api/streaming.py does for a download) through:

- `get_object`: one plain boto3 GetObject, body read in 1 MiB pieces: the reference, the
  fastest this server gives;
- `store`: S3BlobStore.open (one ranged GET read on while the reads follow each other);
- `8MiB-GETs`: the same stream with no open GET, one ranged GET per 8 MiB (how the GCS
  store reads a download);
- `per-chunk`: one ranged GET per 1 MiB read (how the first version read);
- `local`: LocalBlobStore on this disk, for scale.

The GCS store is read the same way from fake-gcs-server (one streamed media GET, against
8 MiB ranged reads and one whole `download_as_bytes`).

Each S3 case runs twice: straight to moto, and through a loopback proxy that waits
`--latency` ms before each answer (a store farther away than loopback). Prints MiB/s, GET
counts and each case's ratio to `get_object` over the same path, best of `--runs`.

    python bench/blob_download.py [--mib 64] [--latency 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cinegen.store.blobs import LocalBlobStore, RangedReader  # noqa: E402
from cinegen.store.s3 import S3BlobStore  # noqa: E402
from tests.support.s3 import RecordingProxy, start_moto  # noqa: E402
from tests.support.server import free_port  # noqa: E402

MiB = 1 << 20
KEY = "videos/bench.mp4"


def drain(stream: BinaryIO) -> int:
    total = 0
    with stream:
        while chunk := stream.read(MiB):
            total += len(chunk)
    return total


def best(runs: int, read: Callable[[], int], size: int) -> float:
    """The best of `runs` reads' MiB/s."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        assert read() == size
        rates.append(size / MiB / (time.perf_counter() - start))
    return max(rates)


def without_opener(store: S3BlobStore, block: int) -> BinaryIO:
    """The store's stream without its open GET: ranged GETs of `block` bytes (as the GCS
    store reads), or of each 1 MiB read (block = 1 MiB: how the first version read)."""
    stream = store.open(KEY)
    assert isinstance(stream, RangedReader)
    stream._opener = None  # noqa: SLF001 - the bench's counterfactual
    stream.block = block
    return stream.as_binary()


def get_object(store: S3BlobStore) -> BinaryIO:
    return store.client.get_object(Bucket=store.bucket, Key=store.prefix + KEY)["Body"]


def count_gets(client: Any) -> list[int]:
    seen = [0]

    def hook(**_: Any) -> None:
        seen[0] += 1

    client.meta.events.register("before-send.s3.GetObject", hook)
    return seen


def start_fake_gcs(root: Path) -> tuple[subprocess.Popen, str]:
    """fake-gcs-server (the dev dependency's binary) on loopback, in memory."""
    from tests.api.vertex.support import _binary

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         "-backend", "memory", "-external-url", url, "-public-host", f"127.0.0.1:{port}",
         "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/storage/v1/b", timeout=1, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("fake-gcs-server did not start")


def gcs_cases(root: Path, data: bytes, runs: int) -> None:
    """The same reads from the GCS store on fake-gcs-server."""
    from cinegen.store.gcs import gcs_client
    from cinegen.store.gcs_blobs import GcsBlobStore

    proc, url = start_fake_gcs(root)
    try:
        client = gcs_client(url, "bench")
        client.create_bucket("bench")
        store = GcsBlobStore("bench", "b/", client=client)
        store.write(KEY, data)
        size = len(data)

        def blocks() -> BinaryIO:
            stream = store.open(KEY)
            assert isinstance(stream, RangedReader)
            stream._opener = None  # noqa: SLF001 - the bench's counterfactual
            return stream.as_binary()

        def whole() -> int:
            return len(client.bucket("bench").blob("b/" + KEY).download_as_bytes())

        rates = {
            "download_as_bytes": best(runs, whole, size),
            "store": best(runs, lambda: drain(store.open(KEY)), size),
            "8MiB-GETs": best(runs, lambda: drain(blocks()), size),
        }
        for name, rate in rates.items():
            print(
                f"{'fake-gcs':>16} {name:>10}: {rate:8.1f} MiB/s  "
                f"{rate / rates['download_as_bytes']:.2f}x download_as_bytes"
            )
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--latency", type=float, default=20.0, help="ms per proxied request")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * MiB
    data = os.urandom(size)
    with tempfile.TemporaryDirectory(prefix="cinegen-bench-") as temp:
        root = Path(temp)
        server = start_moto(root)
        proxy = RecordingProxy(server.url, delay=args.latency / 1000).start()
        try:
            bucket = server.bucket()
            S3BlobStore(bucket, "b/", client=server.client()).write(KEY, data)
            local = LocalBlobStore(root / "local")
            local.write(KEY, data)
            print(f"blob: {args.mib} MiB, 1 MiB reads, best of {args.runs}")
            print(f"local disk: {best(args.runs, lambda: drain(local.open(KEY)), size):8.1f} MiB/s")
            for label, endpoint in (
                ("moto", server.url),
                (f"moto + {args.latency:g} ms", proxy.url),
            ):
                store = S3BlobStore(bucket, "b/", client=server.client(endpoint))
                gets = count_gets(store.client)
                rates = {}
                counts = {}
                cases = {
                    "get_object": lambda s=store: drain(get_object(s)),
                    "store": lambda s=store: drain(s.open(KEY)),
                    "8MiB-GETs": lambda s=store: drain(without_opener(s, 8 * MiB)),
                    "per-chunk": lambda s=store: drain(without_opener(s, MiB)),
                }
                for name, read in cases.items():
                    gets[0] = 0
                    rates[name] = best(args.runs, read, size)
                    counts[name] = gets[0] // args.runs
                for name, rate in rates.items():
                    print(
                        f"{label:>16} {name:>10}: {rate:8.1f} MiB/s  {counts[name]:3d} GETs  "
                        f"{rate / rates['get_object']:.2f}x get_object"
                    )
        finally:
            proxy.stop()
            server.stop()
        gcs_cases(root, data, args.runs)


if __name__ == "__main__":
    main()
