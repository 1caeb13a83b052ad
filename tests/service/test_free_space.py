"""A submit is refused with 503 UNAVAILABLE while the data disk has less free space than
`min_free_bytes`, and nothing of the request is kept."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import text_request
from tests.support.app import in_process


def test_submit_below_the_free_space_threshold_is_503(tmp_path: Path) -> None:
    with in_process(tmp_path / "data", workers=0, min_free_bytes=1 << 60) as app:
        with app.client() as client:
            response = client.post(
                "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                json=text_request("no room"),
            )
        assert response.status_code == 503, response.text
        assert response.json()["error"]["status"] == "UNAVAILABLE"
        assert "storage is full" in response.json()["error"]["message"]
        assert app.db.list_operations(None, limit=10) == []


def test_submit_above_the_threshold_is_accepted(tmp_path: Path) -> None:
    with in_process(tmp_path / "data", workers=0, min_free_bytes=1) as app:
        with app.client() as client:
            response = client.post(
                "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                json=text_request("room enough"),
            )
        assert response.status_code == 200, response.text
