"""`cinegen generate`: build a `predictLongRunning` body from the options, submit it, follow
the operation, save the MP4(s).

The body is the one any Veo REST client would send; the client (a server, or this process)
checks it, so the CLI holds no rules of its own.
"""

from __future__ import annotations

import argparse
import base64
import mimetypes
import sys
from pathlib import Path
from typing import Any

from cinegen.cli.clients import Client, add_client_options, op_id, run_with_client, sample_uris
from cinegen.cli.errors import EXIT_INTERRUPTED, EXIT_USAGE, CliError, fail
from cinegen.cli.progress import follow
from cinegen.settings import Settings

DEFAULT_MODEL = "veo-3.1-generate-preview"


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    add_client_options(gen)
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    return run_with_client(lambda client: generate(client, args), args)


def generate(client: Client, args: argparse.Namespace) -> int:
    """Submit, follow, save; Ctrl-C cancels the operation rather than leaving it running."""
    body = request_body(client, args)
    if client.kind == "in-process":
        print(
            f"cinegen: generating in this process (data: {Settings().data_dir.resolve()}); "
            "pass --server URL to use a running server",
            file=sys.stderr,
        )
    name = client.create(args.model, body)
    print(f"cinegen: operation {name}", file=sys.stderr)
    try:
        op = follow(client, name)
    except KeyboardInterrupt:
        return _interrupted(client, name)
    client.wait()
    if "error" in op:
        raise CliError(f"the generation failed: {op['error'].get('message', 'unknown error')}")
    for path in save(client, op, args.output):
        print(path)
    return 0


def _interrupted(client: Client, name: str) -> int:
    client.cancel(name)
    client.wait()
    fail(f"interrupted: cancelled {name}")
    return EXIT_INTERRUPTED


# the request body --------------------------------------------------------------------------


def request_body(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """The options as a Gemini API `predictLongRunning` body; unset options are left out."""
    return {"instances": [_instance(client, args)], "parameters": _parameters(args)}


def _instance(client: Client, args: argparse.Namespace) -> dict[str, Any]:
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
    return instance


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    options = (
        ("aspectRatio", args.aspect),
        ("resolution", args.resolution),
        ("durationSeconds", args.duration),
        ("seed", args.seed),
        ("negativePrompt", args.negative),
        ("sampleCount", args.samples),
    )
    return {key: value for key, value in options if value is not None}


def _read(path: str, what: str) -> bytes:
    """A local file's bytes; an unreadable one is bad usage (exit 2), not a refusal."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read the {what} {path}: {exc.strerror}", EXIT_USAGE) from exc


def _image_json(path: str) -> dict[str, str]:
    data = _read(path, "image")
    return {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": _mime(data, path)}


def _mime(data: bytes, path: str) -> str:
    """The type from the bytes first: a file's extension can lie."""
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
    uris = sample_uris(op)
    if not uris:
        raise CliError(f"operation {ref} has no video to extend")
    return {"uri": uris[0]}


# saving ------------------------------------------------------------------------------------


def save(client: Client, op: dict[str, Any], output: str | None) -> list[Path]:
    """Every sample's video: `OUT.mp4` for one, `OUT-1.mp4 …` for several."""
    uris = sample_uris(op)
    if not uris:
        raise CliError("the operation finished with no video (every sample was filtered)")
    target = Path(output or f"{op_id(op['name'])}.mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, uri in enumerate(uris):
        path = _sample_path(target, index, len(uris))
        client.download(uri, path)
        paths.append(path)
    return paths


def _sample_path(target: Path, index: int, count: int) -> Path:
    if count == 1:
        return target
    return target.with_name(f"{target.stem}-{index + 1}{target.suffix}")
