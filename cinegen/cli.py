"""`cinegen serve | keys | models | generate | operations`.

`generate` and `operations` speak the Gemini API dialect to a running server (`--server`), or,
without one, run in this process on the local data directory with the server's own runtime
(`cinegen.app.build_runtime`, `OperationService`, `run_job`): the same rules, the same files.
Exit codes: 0 done, 1 refused by the server or the generation failed, 2 bad usage or an
unreadable local file, 3 the server cannot be reached, 130 interrupted (the operation is
cancelled).
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import logging
import mimetypes
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cinegen.settings import Settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cinegen.app import create_app
    from cinegen.store.db import Database

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = Settings(**overrides)
    db = Database(settings.resolved_database_url)
    db.migrate()
    if not _is_loopback(settings.host) and db.count_keys() == 0 and not settings.allow_public_bind:
        print(
            f"cinegen: refusing to listen on {settings.host} with no API key configured: anyone "
            "who can reach it could use it.\n  Create a key first:  cinegen keys create\n"
            "  or allow it anyway:  CINEGEN_ALLOW_PUBLIC_BIND=true",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    url = f"http://{settings.host}:{settings.port}"
    print(
        f"cinegen {_version()} on {url}  (data: {settings.data_dir.resolve()}, engine: "
        f"{settings.engine})"
    )
    print(f"  try: GEMINI_API_KEY=anything GOOGLE_GEMINI_BASE_URL={url} python your_veo_script.py")
    print(
        f"   or: curl -s {url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning "
        '-H \'Content-Type: application/json\' -d \'{"instances":[{"prompt":"a red fox at '
        "sunset\"}]}'",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from cinegen.api.auth import create_key
    from cinegen.store.db import Database

    db = Database(Settings().resolved_database_url)
    db.migrate()
    if args.keys_command == "create":
        key_id, key = create_key(db, args.name or "")
        print(key)
        print(
            f"(key id {key_id}; stored hashed — this is the only time it is shown)", file=sys.stderr
        )
    elif args.keys_command == "list":
        for row in db.list_keys():
            print(f"{row['id']}  {row['create_time']:%Y-%m-%d %H:%M}  {row['name']}")
    elif args.keys_command == "delete" and not db.delete_key(args.key_id):
        print(f"cinegen: no key with id {args.key_id}", file=sys.stderr)
        return 1
    return 0


def cmd_models(_args: argparse.Namespace) -> int:
    from cinegen.core.catalog import MODELS

    for model in MODELS.values():
        print(f"{model.id:34} {model.engine:8} {model.description}")
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("cinegen")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cinegen", description="A Veo-compatible video server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the HTTP server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it")
    create.add_argument("--name", default="")
    keys_sub.add_parser("list", help="list key ids")
    delete = keys_sub.add_parser("delete", help="delete a key by id")
    delete.add_argument("key_id")
    keys.set_defaults(func=cmd_keys)
    models = sub.add_parser("models", help="list the catalog")
    models.set_defaults(func=cmd_models)
    _add_generate(sub)
    _add_operations(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


# generate and operations ----------------------------------------------------------------

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
DEFAULT_MODEL = "veo-3.1-generate-preview"
_POLL_SECONDS = 0.25


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get("CINEGEN_SERVER"),
        help="a running cinegen, e.g. http://127.0.0.1:8000 (env CINEGEN_SERVER); without it "
        "the work runs in this process on the local data directory (CINEGEN_DATA_DIR)",
    )
    parser.add_argument(
        "--key", default=os.environ.get("CINEGEN_API_KEY"), help="API key (env CINEGEN_API_KEY)"
    )


def _add_generate(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser(
        "generate",
        help="generate a video and save it",
        description="Generate a video through the Gemini API dialect and save the MP4(s).",
    )
    gen.add_argument("prompt", nargs="?", default=None, help="what the video shows")
    gen.add_argument("--model", default=DEFAULT_MODEL)
    gen.add_argument("--image", metavar="F", help="first frame (PNG, JPEG or WebP)")
    gen.add_argument("--last-frame", metavar="F", help="last frame (needs --image)")
    gen.add_argument("--ref", metavar="F", nargs="+", action="extend", help="reference images")
    gen.add_argument(
        "--extend",
        metavar="FILE_OR_OPERATION",
        help="continue a video: an MP4 this server made, an operation name or id, or a file uri",
    )
    gen.add_argument("--aspect", choices=("16:9", "9:16"), help="aspect ratio")
    gen.add_argument("--resolution", help="720p, 1080p or 4k")
    gen.add_argument("--duration", type=int, help="seconds")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--negative", metavar="TEXT", help="negative prompt")
    gen.add_argument("--samples", type=int, metavar="N", help="number of videos")
    gen.add_argument(
        "-o", "--output", metavar="OUT.mp4", help="where to save (several samples: OUT-1.mp4 …)"
    )
    _add_client_options(gen)
    gen.set_defaults(func=cmd_generate)


def _add_operations(sub: argparse._SubParsersAction) -> None:
    ops = sub.add_parser("operations", help="list, get, cancel or delete operations")
    ops_sub = ops.add_subparsers(dest="operations_command", required=True)
    listing = ops_sub.add_parser("list", help="this key's operations, newest first")
    listing.add_argument("--page-size", type=int, default=50)
    _add_client_options(listing)
    for name, text in (
        ("get", "print one operation as JSON"),
        ("cancel", "cancel an operation"),
        ("delete", "delete an operation and its videos"),
    ):
        one = ops_sub.add_parser(name, help=text)
        one.add_argument("name", help="models/{model}/operations/{id}, or the id")
        _add_client_options(one)
    ops.set_defaults(func=cmd_operations)


class CliError(Exception):
    """A failure to report as `cinegen: <message>` with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _fail(message: str) -> None:
    print(f"cinegen: {message}", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    return _run(lambda client: _generate(client, args), args)


def cmd_operations(args: argparse.Namespace) -> int:
    return _run(lambda client: _operations(client, args), args)


def _run(work: Callable[[Client], int], args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            return work(client)
    except CliError as exc:
        _fail(exc.message)
        return exc.code


def _client(args: argparse.Namespace) -> Client:
    if args.server:
        return RemoteClient(args.server, args.key)
    return LocalClient()


# the two clients ---------------------------------------------------------------------------


class Client:
    """What `generate` and `operations` need; JSON in the Gemini API dialect's shapes."""

    kind = ""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def create(self, model: str, body: dict[str, Any]) -> str:
        raise NotImplementedError

    def get(self, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def list(self, page_size: int) -> dict[str, Any]:
        raise NotImplementedError

    def cancel(self, name: str) -> None:
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def download(self, uri: str, path: Path) -> None:
        raise NotImplementedError

    def wait(self) -> None:
        """Let in-process work finish writing before the process exits."""


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

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
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

    def create(self, model: str, body: dict[str, Any]) -> str:
        return self._call("POST", f"/v1beta/models/{model}:predictLongRunning", json=body)["name"]

    def get(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1beta/{_op_path(name)}")

    def list(self, page_size: int) -> dict[str, Any]:
        return self._call("GET", "/v1beta/operations", params={"pageSize": page_size})

    def cancel(self, name: str) -> None:
        self._call("POST", f"/v1beta/{_op_path(name)}:cancel")

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/v1beta/{_op_path(name)}")

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


def _error_message(response: Any) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def _op_path(name: str) -> str:
    """`models/m/operations/id` as given, or a bare id as `operations/id`."""
    name = name.strip().strip("/")
    return name if "/" in name else f"operations/{name}"


class LocalClient(Client):
    """The server's own runtime in this process: submit, then `run_job` on a thread."""

    kind = "in-process"

    def __init__(self) -> None:
        from cinegen.app import build_runtime

        # No queue threads: this process runs only the jobs it submits.
        self.settings = Settings(workers=0)
        self.rt = build_runtime(self.settings)
        self.jobs: list[threading.Thread] = []

    def _guard(self, action: Callable[[], Any]) -> Any:
        from pydantic import ValidationError

        from cinegen.core.errors import CinegenError

        try:
            return action()
        except CinegenError as exc:
            raise CliError(exc.message) from exc
        except ValidationError as exc:
            raise CliError(str(exc)) from exc

    def create(self, model: str, body: dict[str, Any]) -> str:
        from cinegen.api.gemini.translate import operation_name, to_request
        from cinegen.api.gemini.wire import PredictLongRunningRequest
        from cinegen.core import rules
        from cinegen.jobs.worker import run_job

        def submit() -> str:
            rules.resolve_model(model, "v1beta")
            req = to_request(PredictLongRunningRequest.model_validate(body), model)
            op = self.rt.service.submit(req, owner=None, api_version="v1beta")
            job = threading.Thread(target=run_job, args=(op.id, self.rt.queue.ctx), daemon=True)
            job.start()
            self.jobs.append(job)
            return operation_name(op)

        return self._guard(submit)

    def get(self, name: str) -> dict[str, Any]:
        from cinegen.api.gemini.translate import render_operation

        op = self._guard(lambda: self.rt.service.get(_op_id(name), None))
        return render_operation(op, lambda file_id: f"files/{file_id}")

    def list(self, page_size: int) -> dict[str, Any]:
        from cinegen.api.gemini.translate import render_operation

        page = self._guard(
            lambda: self.rt.service.list(None, model=None, page_size=page_size, page_token=None)
        )
        return {
            "operations": [render_operation(op, lambda f: f"files/{f}") for op in page.operations]
        }

    def cancel(self, name: str) -> None:
        self._guard(lambda: self.rt.service.cancel(_op_id(name), None))

    def delete(self, name: str) -> None:
        self._guard(lambda: self.rt.service.delete(_op_id(name), None))

    def download(self, uri: str, path: Path) -> None:
        from cinegen.api.gemini.translate import file_id_from_uri

        def copy() -> None:
            record = self.rt.service.visible_file(file_id_from_uri(uri), None)
            shutil.copyfile(self.rt.service.blobs.local_path(record.blob_key), path)

        self._guard(copy)

    def wait(self) -> None:
        for job in self.jobs:
            job.join()


def _op_id(name: str) -> str:
    return name.strip().rstrip("/").rsplit("/", 1)[-1]


# generate ----------------------------------------------------------------------------------


def _generate(client: Client, args: argparse.Namespace) -> int:
    body = _request_body(client, args)
    if client.kind == "in-process":
        print(
            f"cinegen: generating in this process (data: {Settings().data_dir.resolve()}); "
            "pass --server URL to use a running server",
            file=sys.stderr,
        )
    name = client.create(args.model, body)
    print(f"cinegen: operation {name}", file=sys.stderr)
    try:
        op = _follow(client, name)
    except KeyboardInterrupt:
        client.cancel(name)
        client.wait()
        _fail(f"interrupted: cancelled {name}")
        return EXIT_INTERRUPTED
    client.wait()
    if "error" in op:
        raise CliError(f"the generation failed: {op['error'].get('message', 'unknown error')}")
    for path in _save(client, op, args.output):
        print(path)
    return 0


def _request_body(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    instance: dict[str, Any] = {}
    if args.prompt is not None:
        instance["prompt"] = args.prompt
    if args.image:
        instance["image"] = _image_json(args.image)
    if args.last_frame:
        instance["lastFrame"] = _image_json(args.last_frame)
    if args.ref:
        instance["referenceImages"] = [
            {"image": _image_json(path), "referenceType": "asset"} for path in args.ref
        ]
    if args.extend:
        instance["video"] = _video_json(client, args.extend)
    options = (
        ("aspectRatio", args.aspect),
        ("resolution", args.resolution),
        ("durationSeconds", args.duration),
        ("seed", args.seed),
        ("negativePrompt", args.negative),
        ("sampleCount", args.samples),
    )
    parameters = {key: value for key, value in options if value is not None}
    return {"instances": [instance], "parameters": parameters}


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read the {what} {path}: {exc.strerror}", EXIT_USAGE) from exc


def _image_json(path: str) -> dict[str, str]:
    data = _read(path, "image")
    return {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": _mime(data, path)}


def _mime(data: bytes, path: str) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _video_json(client: Client, ref: str) -> dict[str, str]:
    """A local MP4 goes as bytes; a file uri as is; anything else names an operation."""
    if Path(ref).is_file():
        data = _read(ref, "video")
        return {"encodedVideo": base64.b64encode(data).decode(), "encoding": "video/mp4"}
    if "files/" in ref:
        return {"uri": ref}
    op = client.get(ref)
    if not op.get("done"):
        raise CliError(f"operation {ref} is not finished yet: nothing to extend")
    uris = _sample_uris(op)
    if not uris:
        raise CliError(f"operation {ref} has no video to extend")
    return {"uri": uris[0]}


def _sample_uris(op: dict[str, Any]) -> list[str]:
    samples = op.get("response", {}).get("generateVideoResponse", {}).get("generatedSamples", [])
    return [s["video"]["uri"] for s in samples if s.get("video", {}).get("uri")]


def _follow(client: Client, name: str) -> dict[str, Any]:
    """Poll until done, showing progress: a rich bar on a terminal, plain lines otherwise."""
    from rich.console import Console

    console = Console(stderr=True)
    if console.is_terminal:
        return _follow_bar(client, name, console)
    return _follow_lines(client, name)


def _poll(client: Client, name: str) -> Iterator[dict[str, Any]]:
    while True:
        op = client.get(name)
        yield op
        if op.get("done"):
            return
        time.sleep(_POLL_SECONDS)


def _status(op: dict[str, Any]) -> tuple[float, str]:
    meta = op.get("metadata", {})
    return float(meta.get("progressPercent", 0)), str(meta.get("state", "running")).lower()


def _follow_bar(client: Client, name: str, console: Any) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold cyan]{task.description:>9}"),
        BarColumn(bar_width=None),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    op: dict[str, Any] = {}
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("queued", total=100)
        for op in _poll(client, name):
            percent, state = _status(op)
            progress.update(task, completed=percent, description=state)
    return op


def _follow_lines(client: Client, name: str) -> dict[str, Any]:
    shown = (-1, "")
    op: dict[str, Any] = {}
    for op in _poll(client, name):
        percent, state = _status(op)
        step = (int(percent // 10) * 10, state)
        if step != shown:
            print(f"cinegen: {state} {step[0]:3d}%", file=sys.stderr, flush=True)
            shown = step
    return op


def _save(client: Client, op: dict[str, Any], output: str | None) -> list[Path]:
    uris = _sample_uris(op)
    if not uris:
        raise CliError("the operation finished with no video (every sample was filtered)")
    target = Path(output or f"{_op_id(op['name'])}.mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, uri in enumerate(uris):
        path = (
            target
            if len(uris) == 1
            else target.with_name(f"{target.stem}-{index + 1}{target.suffix}")
        )
        client.download(uri, path)
        paths.append(path)
    return paths


# operations --------------------------------------------------------------------------------


def _operations(client: Client, args: argparse.Namespace) -> int:
    command = args.operations_command
    if command == "list":
        _print_operations(client.list(args.page_size).get("operations", []))
    elif command == "get":
        print(json.dumps(client.get(args.name), indent=2))
    elif command == "cancel":
        client.cancel(args.name)
        print(f"cancelled {args.name}")
    elif command == "delete":
        client.delete(args.name)
        print(f"deleted {args.name}")
    return 0


def _print_operations(ops: list[dict[str, Any]]) -> None:
    if not ops:
        print("no operations", file=sys.stderr)
    for op in ops:
        meta = op.get("metadata", {})
        state = str(meta.get("state", "done" if op.get("done") else "running")).lower()
        created = str(meta.get("createTime", ""))[:19].replace("T", " ")
        percent = f"{float(meta.get('progressPercent', 0)):3.0f}%"
        samples = len(_sample_uris(op))
        print(f"{op['name']}  {state:9} {percent}  {created}  {samples} video(s)")


if __name__ == "__main__":
    sys.exit(main())
