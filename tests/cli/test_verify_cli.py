"""`cinegen verify FILE_OR_URL`: a file read in this process, a cinegen download URL fetched
with the key, a server asked with `--server`; human-readable and `--json`; exit 1 for a
manifest that does not hold, 1 with one line on stderr for what is not an MP4."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cinegen.cli.parser import main
from tests.helpers import generate, sample_uris, text_request
from tests.support.server import ServerProcess, create_key


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A server with one API key, made before it starts (a server caches that it has none)."""
    proc = ServerProcess(tmp_path_factory.mktemp("verify-server"))
    key = create_key(proc)
    proc.start()
    yield proc, key
    proc.stop()


@pytest.fixture(scope="module")
def made(keyed: tuple[ServerProcess, str]) -> tuple[str, str, bytes]:
    """(key, download URL, bytes) of a 4 s video the server made with seed 31."""
    server, key = keyed
    client = httpx.Client(base_url=server.url, headers={"x-goog-api-key": key}, timeout=120)
    with client:
        op = generate(client, text_request("a kite over a beach", durationSeconds=4, seed=31))
        uri = sample_uris(op)[0]
        url = uri if uri.startswith("http") else server.url + uri
        return key, url, client.get(url, follow_redirects=True).content


def test_a_file_in_this_process_reads_valid_with_model_and_seed(
    tmp_path: Path,
    made: tuple[str, str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CINEGEN_DATA_DIR", str(tmp_path / "data"))
    video = tmp_path / "v.mp4"
    video.write_bytes(made[2])
    assert main(["verify", str(video)]) == 0
    out = capsys.readouterr().out
    assert "C2PA: valid, signer not trusted" in out
    assert "model veo-3.1-generate-preview, seed 31" in out
    assert "this installation's certificate" not in out  # the server's, not this data dir's
    assert "Watermark: found" in out and "not this one" in out
    assert "Tags: AI-generated" in out


def test_a_url_is_downloaded_with_the_key_and_json_is_the_endpoints_report(
    keyed: tuple[ServerProcess, str],
    made: tuple[str, str, bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    key, url, data = made
    server = keyed[0]
    assert main(["verify", url, "--json", "--server", server.url, "--key", key]) == 0
    report = json.loads(capsys.readouterr().out)
    direct = httpx.post(
        server.url + "/v1beta/cinegen:verify",
        content=data,
        headers={"x-goog-api-key": key, "content-type": "video/mp4"},
        timeout=60,
    ).json()
    assert report == direct
    assert report["c2pa"]["signedHere"] is True and report["c2pa"]["seed"] == 31
    assert report["watermark"]["madeHere"] is True and report["watermark"]["operation"]


def test_a_url_without_the_key_fails_with_the_servers_words(
    made: tuple[str, str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", made[1]]) == 1
    assert capsys.readouterr().err.startswith("cinegen: ")


def test_a_tampered_file_exits_1(
    tmp_path: Path,
    made: tuple[str, str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CINEGEN_DATA_DIR", str(tmp_path / "data"))
    data = bytearray(made[2])
    mdat = data.find(b"mdat")
    data[mdat + 300 : mdat + 310] = bytes(10)
    video = tmp_path / "t.mp4"
    video.write_bytes(bytes(data))
    assert main(["verify", str(video)]) == 1
    out = capsys.readouterr().out
    assert "C2PA: INVALID" in out and "assertion.bmffHash.mismatch" in out


def test_what_is_not_an_mp4_is_one_line_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CINEGEN_DATA_DIR", str(tmp_path / "data"))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["verify", str(text)]) == 1
    assert main(["verify", str(tmp_path / "missing.mp4")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0]
        == "cinegen: The file is not an MP4 video: it does not start with an ISO BMFF `ftyp` box."
    )
    assert err[1].startswith("cinegen: cannot read ")


def test_serve_refuses_to_start_with_a_key_that_is_not_the_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line and exit 2, before any job could fail on it."""
    from tests.media.test_c2pa import _operator_chain

    chain, _key, _root = _operator_chain(tmp_path)
    (tmp_path / "other").mkdir()
    _other_chain, other_key, _other_root = _operator_chain(tmp_path / "other")
    monkeypatch.setenv("CINEGEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CINEGEN_C2PA_CERT", str(chain))
    monkeypatch.setenv("CINEGEN_C2PA_KEY", str(other_key))
    assert main(["serve", "--port", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cinegen: The C2PA certificate cannot sign") and err.count("\n") == 1
