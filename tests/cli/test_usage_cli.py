"""`cinegen usage`: in this process on the data directory (every key's usage), and against a
running server (`--server`: the key's own, through `GET /v1beta/cinegen/usage`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cinegen.api.auth import create_key
from cinegen.cli.parser import main
from tests.cli.test_cli import cli
from tests.helpers import generate, submit, text_request
from tests.support.app import in_process, op_id
from tests.support.engines import ScriptedEngine
from tests.support.server import ServerProcess

FAST = "veo-3.1-fast-generate-preview"


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_usage_in_process_prints_every_keys_rows_and_a_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    with in_process(data, workers=0, engines={"preview": ScriptedEngine(frames=48)}) as app:
        key_a, a = create_key(app.db, "a")
        key_b, b = create_key(app.db, "b")
        for key, model in ((a, FAST), (a, FAST), (b, "veo-3.1-generate-preview")):
            with app.client(headers={"x-goog-api-key": key}) as client:
                app.run(op_id(submit(client, text_request("metered"), model)))
    monkeypatch.setenv("CINEGEN_DATA_DIR", str(data))
    assert main(["usage", "--group-by", "key,model"]) == 0
    out = capsys.readouterr().out
    lines = _lines(out)
    assert lines[0][:2] == ["usage", "from"]
    assert lines[1] == ["key", "model", "operations", "seconds", "samples", "engine_s", "veo_usd"]
    rows = {(line[0], line[1]): line[2:] for line in lines[2:-1]}
    # 2 s each (48 frames at 24 fps): Fast at $0.15/s, standard at $0.40/s
    assert rows[(key_a, FAST)][:3] == ["2", "4.0", "2"]
    assert rows[(key_a, FAST)][-1] == "0.60"
    assert rows[(key_b, "veo-3.1-generate-preview")][-1] == "0.80"
    assert lines[-1][0] == "total" and lines[-1][1:4] == ["3", "6.0", "3"]
    assert lines[-1][-1] == "1.40"


def test_usage_in_process_refuses_a_bad_date_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CINEGEN_DATA_DIR", str(tmp_path / "data"))
    assert main(["usage", "--start", "last tuesday"]) == 2
    assert "Invalid value for `start`" in capsys.readouterr().err


def test_usage_against_a_server_matches_the_endpoint(server: ServerProcess, tmp_path: Path) -> None:
    generate(httpx.Client(base_url=server.url, timeout=60), text_request("metered by a server"))
    run = cli("usage", "--group-by", "model", "--server", server.url, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    expected = httpx.get(f"{server.url}/v1beta/cinegen/usage").json()["total"]
    total = _lines(run.stdout)[-1]
    assert total[0] == "total"
    assert int(total[1]) == expected["operations"] >= 1
    assert total[2] == f"{expected['seconds']:.1f}"
    assert total[-1] == f"{expected['veoPriceUsd']:.2f}"
