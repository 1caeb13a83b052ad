"""`cinegen verify FILE_OR_URL`: a video's content credentials, watermark and tags.

A URL is downloaded first (with `--key`, as the other commands send it, so a cinegen
download link works). With `--server` the video is sent to that server's
`POST /v1beta/cinegen:verify` (its certificate, trust anchors and watermark ids decide
"signed here" and "made here"); without, it is read in this process against the local data
directory's. `--json` prints the report as the endpoint returns it. Exit 0 for a report, 1
when the video carries a manifest that does not hold (tampered, or signed wrongly).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cinegen.cli.clients import RemoteClient, add_client_options, guarded
from cinegen.cli.errors import EXIT_FAILED, CliError, fail

_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def add_parser(sub: argparse._SubParsersAction) -> None:
    verify = sub.add_parser("verify", help="read a video's C2PA credentials, watermark and tags")
    verify.add_argument("video", metavar="FILE_OR_URL", help="an MP4 file, or its http(s) URL")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    add_client_options(verify)
    verify.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        report = verify_report(args)
    except CliError as exc:
        fail(exc.message)
        return exc.code
    print(json.dumps(report, indent=2) if args.json else format_report(report, args.video))
    c2pa = report.get("c2pa") or {}
    return EXIT_FAILED if c2pa.get("present") and not c2pa.get("valid") else 0


def verify_report(args: argparse.Namespace) -> dict[str, Any]:
    """The endpoint's report for the video `args` name."""
    with tempfile.TemporaryDirectory(prefix="cinegen-verify-") as scratch:
        data = _video_bytes(args, Path(scratch) / "video.mp4")
        if args.server:
            client = RemoteClient(args.server, args.key)
            try:
                return client.verify(data)
            finally:
                client.close()
        return _local(data)


def _video_bytes(args: argparse.Namespace, scratch: Path) -> bytes:
    source: str = args.video
    if urlsplit(source).scheme in ("http", "https"):
        parts = urlsplit(source)
        client = RemoteClient(args.server or f"{parts.scheme}://{parts.netloc}", args.key)
        try:
            client.download(source, scratch)
        finally:
            client.close()
        return scratch.read_bytes()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror or exc}") from exc


def _local(data: bytes) -> dict[str, Any]:
    """In this process: the operator's own data dir, so every operation may be named."""
    from cinegen.cli.serve import local_database
    from cinegen.service.provenance import verify_video
    from cinegen.settings import Settings

    settings = Settings()
    return guarded(
        lambda: verify_video(settings, data, local_database(settings), everyone=True).to_json()
    )


def format_report(report: dict[str, Any], name: str) -> str:
    """The report for a person: one block per mark."""
    size = report.get("sizeBytes", 0)
    lines = [f"{name}  ({size:,} bytes, sha256 {report.get('sha256', '')[:16]}…)"]
    lines += _c2pa_lines(report.get("c2pa") or {})
    lines += _watermark_lines(report.get("watermark"))
    tags = report.get("tags") or {}
    ai = "AI-generated" if report.get("aiGenerated") else "no AI-generated mark"
    lines.append(f"Tags: {ai}" + (f" — {tags['description']}" if "description" in tags else ""))
    return "\n".join(lines)


def _c2pa_lines(c2pa: dict[str, Any]) -> list[str]:
    if not c2pa.get("present"):
        return ["C2PA: none (no content credentials in this file)"]
    verdict = "valid" if c2pa.get("valid") else "INVALID"
    trust = "trusted signer" if c2pa.get("trusted") else "signer not trusted"
    lines = [f"C2PA: {verdict}, {trust}"]
    for error in c2pa.get("validationErrors") or []:
        lines.append(f"  error: {error}")
    here = ", this installation's certificate" if c2pa.get("signedHere") else ""
    lines.append(f"  signed by: {c2pa.get('signer', '')} ({c2pa.get('issuer', '')}){here}")
    for action in c2pa.get("actions") or []:
        source = str(action.get("digitalSourceType", "")).removeprefix(_IPTC)
        lines.append(f"  action: {action.get('action', '')}" + (f" ({source})" if source else ""))
    lines.append(
        f"  made by: {c2pa.get('claimGenerator', '')}, engine {c2pa.get('engine')}, "
        f"model {c2pa.get('model')}, seed {c2pa.get('seed')}"
    )
    for ingredient in c2pa.get("ingredients") or []:
        generation = ingredient.get("generation") or {}
        own = f", its seed {generation['seed']}" if "seed" in generation else ""
        lines.append(
            f"  ingredient: {ingredient.get('title')} ({ingredient.get('relationship')}{own})"
        )
    return lines


def _watermark_lines(watermark: dict[str, Any] | None) -> list[str]:
    if watermark is None:
        return ["Watermark: not checked"]
    if not watermark.get("found"):
        return [f"Watermark: none found (score {watermark.get('score', 0):.1f})"]
    line = (
        f"Watermark: found, payload {watermark.get('payload')}, "
        f"bit confidence {watermark.get('bitConfidence', 0):.3f}"
    )
    if not watermark.get("madeHere"):
        return [line + f", made by installation {watermark.get('installationId')}, not this one"]
    line += ", made by this installation"
    if watermark.get("operation"):
        line += f" (operation {watermark['operation']}, sample {watermark.get('sampleIndex')})"
    return [line]
