"""The two ways `generate` and `operations` reach operations: a server over HTTP, or the
server's own runtime in this process.

Both speak JSON in the Gemini API dialect's shapes, so the commands cannot tell them apart,
and both raise only `CliError`: a server's refusal and an in-process one read the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from cinegen.cli.errors import EXIT_UNREACHABLE, CliError, fail
from cinegen.settings import Settings

if TYPE_CHECKING:
    import httpx

    from cinegen.core.operation import Operation

T = TypeVar("T")


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """`--server` and `--key`, on every command that works on operations."""
    parser.add_argument(
        "--server",
        default=os.environ.get("CINEGEN_SERVER"),
        help="a running cinegen, e.g. http://127.0.0.1:8000 (env CINEGEN_SERVER); without it "
        "the work runs in this process on the local data directory (CINEGEN_DATA_DIR)",
    )
    parser.add_argument(
        "--key", default=os.environ.get("CINEGEN_API_KEY"), help="API key (env CINEGEN_API_KEY)"
    )


def run_with_client(work: Callable[[Client], int], args: argparse.Namespace) -> int:
    """Run a command against the client `args` choose; a `CliError` becomes its exit code."""
    try:
        with open_client(args) as client:
            return work(client)
    except CliError as exc:
        fail(exc.message)
        return exc.code


def open_client(args: argparse.Namespace) -> Client:
    """`--server` given: that server; otherwise this process, on the local data directory."""
    if args.server:
        return RemoteClient(args.server, args.key)
    return LocalClient()


class Client(Protocol):
    """What `generate` and `operations` need; JSON in the Gemini API dialect's shapes."""

    kind: str

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections; nothing to do by default."""
        return None

    def create(self, model: str, body: dict[str, Any]) -> str:
        """Submit a `predictLongRunning` body; the operation's name."""
        ...

    def get(self, name: str) -> dict[str, Any]: ...

    def list(self, page_size: int) -> dict[str, Any]: ...

    def cancel(self, name: str) -> None: ...

    def delete(self, name: str) -> None: ...

    def download(self, uri: str, path: Path) -> None:
        """Save a sample's video (its uri as the operation gives it) to `path`."""
        ...

    def wait(self) -> None:
        """Let in-process work finish writing before the process exits; nothing by default."""
        return None


def op_id(name: str) -> str:
    """The id at the end of `models/m/operations/id`, or a bare id as given."""
    return name.strip().rstrip("/").rsplit("/", 1)[-1]


def op_path(name: str) -> str:
    """`models/m/operations/id` as given, or a bare id as `operations/id`."""
    name = name.strip().strip("/")
    return name if "/" in name else f"operations/{name}"


def sample_uris(op: dict[str, Any]) -> list[str]:
    """The video uris of a finished operation, in sample order (none if it has none)."""
    samples = op.get("response", {}).get("generateVideoResponse", {}).get("generatedSamples", [])
    return [s["video"]["uri"] for s in samples if s.get("video", {}).get("uri")]


# over HTTP ---------------------------------------------------------------------------------


class RemoteClient(Client):
    """A running cinegen over HTTP, like any Veo REST client."""

    kind = "server"

    def __init__(self, server: str, key: str | None) -> None:
        import httpx

        self.base = server.rstrip("/")
        headers = {"x-goog-api-key": key} if key else {}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=60)

    def close(self) -> None:
        self.http.close()

    def create(self, model: str, body: dict[str, Any]) -> str:
        return self._call("POST", f"/v1beta/models/{model}:predictLongRunning", json=body)["name"]

    def get(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1beta/{op_path(name)}")

    def list(self, page_size: int) -> dict[str, Any]:
        return self._call("GET", "/v1beta/operations", params={"pageSize": page_size})

    def cancel(self, name: str) -> None:
        self._call("POST", f"/v1beta/{op_path(name)}:cancel")

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/v1beta/{op_path(name)}")

    def download(self, uri: str, path: Path) -> None:
        import httpx

        try:
            with self.http.stream("GET", uri, follow_redirects=True) as response:
                if response.status_code != 200:
                    response.read()
                    raise CliError(_error_message(response))
                with path.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot download {uri}: {exc}", EXIT_UNREACHABLE) from exc

    def verify(self, data: bytes) -> dict[str, Any]:
        """The server's verify report for an MP4 (`POST /v1beta/cinegen:verify`)."""
        headers = {"content-type": "video/mp4"}
        return self._call("POST", "/v1beta/cinegen:verify", content=data, headers=headers)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One request; the server's own error message, or why it could not be reached."""
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.base}: {exc}", EXIT_UNREACHABLE) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200:
            error = data.get("error") if isinstance(data, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise CliError(message or f"HTTP {response.status_code}: {response.text[:300]}")
        return data if isinstance(data, dict) else {}


def _error_message(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


# in this process ---------------------------------------------------------------------------


class LocalClient(Client):
    """The server's own runtime in this process: submit, then `run_job` on a thread.

    It submits through `submit_prediction`, the Gemini route's own path, so a body the server
    refuses is refused here with the same words.
    """

    kind = "in-process"

    def __init__(self) -> None:
        from cinegen.app import build_runtime

        # No queue threads: this process runs only the jobs it submits.
        self.settings = Settings(workers=0)
        self.rt = build_runtime(self.settings)
        self.jobs: list[threading.Thread] = []

    def create(self, model: str, body: dict[str, Any]) -> str:
        from cinegen.api.gemini.routes import submit_prediction
        from cinegen.api.gemini.translate import operation_name

        op = guarded(lambda: submit_prediction(self.rt.service, model, "v1beta", body, None))
        self._run(op)
        return operation_name(op)

    def get(self, name: str) -> dict[str, Any]:
        op = guarded(lambda: self.rt.service.get(op_id(name), None))
        return _render(op)

    def list(self, page_size: int) -> dict[str, Any]:
        page = guarded(
            lambda: self.rt.service.list_page(
                None, model=None, page_size=page_size, page_token=None
            )
        )
        return {"operations": [_render(op) for op in page.operations]}

    def cancel(self, name: str) -> None:
        guarded(lambda: self.rt.service.cancel(op_id(name), None))

    def delete(self, name: str) -> None:
        guarded(lambda: self.rt.service.delete(op_id(name), None))

    def download(self, uri: str, path: Path) -> None:
        from cinegen.api.gemini.translate import file_id_from_uri

        def copy() -> None:
            opened = self.rt.service.files.open_file(file_id_from_uri(uri), None)
            with opened, path.open("wb") as out:
                shutil.copyfileobj(opened.stream, out, 1 << 20)

        guarded(copy)

    def wait(self) -> None:
        for job in self.jobs:
            job.join()

    def _run(self, op: Operation) -> None:
        """The job on a thread of this process: there are no queue workers to take it."""
        from cinegen.jobs.worker import run_job

        job = threading.Thread(target=run_job, args=(op.id, self.rt.jobs), daemon=True)
        job.start()
        self.jobs.append(job)


def guarded(action: Callable[[], T]) -> T:
    """Run a service call; its refusal (a `CinegenError`) becomes a `CliError`, same words."""
    from cinegen.core.errors import CinegenError

    try:
        return action()
    except CinegenError as exc:
        raise CliError(exc.message) from exc


def _render(op: Operation) -> dict[str, Any]:
    """The operation as the Gemini route renders it, with `files/{id}` as the video uri."""
    from cinegen.api.gemini.translate import render_operation

    return render_operation(op, lambda file_id: f"files/{file_id}")
