"""CINEGEN_GCS_ALLOWED_PREFIXES and the one answer for what a caller may not read or write
(cinegen/store/gcs.py), against a stub client: no emulator, no network."""

from __future__ import annotations

import io
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from cinegen.store.gcs import (
    GcsError,
    GcsStore,
    GcsUnavailable,
    parse_allowed_prefixes,
    parse_gs_uri,
)


class _Blob:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.size = 3

    def download_as_bytes(self) -> bytes:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def upload_from_file(self, source: Any, content_type: str) -> None:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        self.outcome = source.read()


class _Client:
    """`objects[(bucket, name)]`: bytes, or the exception the API raises for it; absent:
    `get_blob` answers None as the real client does for a missing object."""

    def __init__(self, objects: dict[tuple[str, str], Any]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def bucket(self, bucket: str) -> Any:
        client = self

        class _Bucket:
            def get_blob(self, name: str) -> _Blob | None:
                client.calls.append((bucket, name))
                outcome = client.objects.get((bucket, name))
                if outcome is None:
                    return None
                if isinstance(outcome, gexc.Forbidden):
                    raise outcome  # metadata itself refused
                return _Blob(outcome)

            def blob(self, name: str) -> _Blob:
                client.calls.append((bucket, name))
                return _Blob(client.objects.get((bucket, name), b""))

        return _Bucket()


def _store(allowed: str, objects: dict[tuple[str, str], Any] | None = None) -> GcsStore:
    store = GcsStore(
        endpoint="http://stub", project="p", default_credentials=False,
        allowed_prefixes=allowed.split(","),
    )  # fmt: skip
    store._client = _Client(objects or {})
    return store


def _read_message(store: GcsStore, uri: str) -> str:
    with pytest.raises(GcsError) as info:
        store.read(uri)
    return info.value.message.replace(uri, "URI")


def test_outside_missing_and_forbidden_read_alike() -> None:
    store = _store(
        "gs://shared/in/",
        {
            ("shared", "in/ok.png"): b"png",
            ("shared", "in/locked.png"): gexc.Forbidden("403 caller lacks storage.objects.get"),
            ("shared", "in/gone.png"): gexc.NotFound("404 no such object"),
            ("secret", "a.png"): b"secret",
        },
    )
    assert store.read("gs://shared/in/ok.png") == b"png"
    uris = [
        "gs://secret/a.png",  # exists, outside the list
        "gs://shared/in/missing.png",  # inside, no such object
        "gs://shared/in/locked.png",  # inside, the credentials may not read it
        "gs://shared/in/gone.png",  # inside, 404 on download
        "gs://shared/other.png",  # same bucket, outside the prefix
    ]
    assert {_read_message(store, uri) for uri in uris} == {
        "The Cloud Storage object `URI` cannot be read."
    }
    assert ("secret", "a.png") not in store.client().calls  # never asked for
    assert ("shared", "other.png") not in store.client().calls


def test_empty_list_allows_nothing_and_star_everything() -> None:
    objects = {("any", "x.png"): b"x"}
    assert "cannot be read" in _read_message(_store("", objects), "gs://any/x.png")
    assert _store("*", objects).read("gs://any/x.png") == b"x"


@pytest.mark.parametrize(
    ("entry", "uri", "allowed"),
    [
        ("gs://b", "gs://b/x", True),
        ("gs://b/", "gs://b/deep/x", True),
        ("gs://b/pre", "gs://b/pre/x", True),  # a prefix is a folder
        ("gs://b/pre", "gs://b/prefix-other/x", False),
        ("gs://b/pre/", "gs://b/pre", False),
        ("gs://b/pre/", "gs://bb/pre/x", False),
        ("gs://b/pre/", "gs://b/pre/../other/x", False),  # no walking out
        ("gs://b/pre/", "gs://b/pre/./x", False),
    ],
)
def test_prefix_matching(entry: str, uri: str, allowed: bool) -> None:
    assert _store(entry).allows(parse_gs_uri(uri)) is allowed


@pytest.mark.parametrize("entry", ["s3://b/", "gs://", "gs://B/", "gs://b/../c/", "b/"])
def test_malformed_entries_are_refused_at_start(entry: str) -> None:
    with pytest.raises(ValueError, match="CINEGEN_GCS_ALLOWED_PREFIXES"):
        parse_allowed_prefixes([entry])


def test_writes_outside_or_refused_answer_alike() -> None:
    store = _store(
        "gs://out/videos/",
        {("out", "videos/locked/sample_0.mp4"): gexc.Forbidden("403 no storage.objects.create")},
    )
    store.write("gs://out/videos/op/sample_0.mp4", io.BytesIO(b"mp4"))
    store.check_writable("gs://out/videos/run")
    refused = []
    for uri in ("gs://elsewhere/x/sample_0.mp4", "gs://out/videos/locked/sample_0.mp4"):
        with pytest.raises(GcsError) as info:
            store.write(uri, io.BytesIO(b"mp4"))
        refused.append(info.value.message.replace(uri, "URI"))
    with pytest.raises(GcsError) as info:
        store.check_writable("gs://elsewhere/x/")
    refused.append(info.value.message.replace("gs://elsewhere/x/", "URI"))
    assert set(refused) == {"The Cloud Storage location `URI` cannot be written."}


def test_server_errors_stay_unavailable() -> None:
    store = _store("*", {("b", "x.png"): gexc.ServiceUnavailable("503 backend")})
    with pytest.raises(GcsUnavailable):
        store.read("gs://b/x.png")
