"""The monthly report pack over the real service (real NATS, the real database, real HTTP)
and through `ibest report monthly`: the PDF names every trust with its figures exactly as
GET /v1/trusts publishes them; the formats, the read scope and the refusals."""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.reporting.pack_render import LEAGUE, shown
from services.reporting.report_cli import monthly_command
from tests.harness import publish_raw, running_service, wait_for
from tests.reporting import dataset as ds
from tests.reporting.test_pack import pdf_lines
from tests.reporting.test_service import READ, SPEC, all_applied, clock

NAMES = {"RTH": "Oxford University Hospitals", "R0A": "Manchester University", "RXF": "RXF"}
"""deploy/trusts.yaml's names; RXF is not in it, so the pack shows its code."""


@pytest.fixture(autouse=True)
def with_version_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.envelope.catalogue", lambda: ds.CATALOGUE)


@pytest.mark.slow
async def test_pack_route_and_command_give_the_published_figures(
    settings: Settings, js: JetStreamContext, tmp_path: Path
) -> None:
    for event, msg_id in ds.shuffled_with_duplicates():
        assert await publish_raw(js, event, msg_id=msg_id)
    async with (
        running_service(SPEC, settings, clock) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as api,
    ):

        async def settled() -> dict[str, Any] | None:
            body = (await api.get("/v1/trusts", headers=READ)).json()
            return body if await all_applied(js) and len(body["trusts"]) == 3 else None

        published = await wait_for(settled, 60, "the dataset applied")
        answer = await api.get("/v1/reports/monthly/2025-05.pdf", headers=READ)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/pdf"
        assert len(answer.content) < 2 * 1024 * 1024
        lines = pdf_lines(answer.content)
        for t in published["trusts"]:
            row = [t["trustcode"], NAMES[t["trustcode"]]]
            row += [shown(t["figures"].get(c)) for c in LEAGUE]
            assert " ".join(row) in lines, row

        page = await api.get("/v1/reports/monthly/2025-05.html?trust=rth", headers=READ)
        assert page.headers["content-type"].startswith("text/html")
        assert "Oxford University Hospitals (RTH)" in page.text
        archive = await api.get("/v1/reports/monthly/2025-05.zip", headers=READ)
        with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
            assert {"headline.csv", "trusts.csv", "definitions.csv"} <= set(z.namelist())
            assert "Oxford University Hospitals" in z.read("trusts.csv").decode()

        assert (await api.get("/v1/reports/monthly/2025-05.pdf")).status_code == 401
        bad = await api.get("/v1/reports/monthly/2025-05.doc", headers=READ)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path.file"
        later = await api.get("/v1/reports/monthly/2025-07.pdf", headers=READ)
        assert later.status_code == 404 and "has not begun" in later.text
        unknown = await api.get("/v1/reports/monthly/2025-05.pdf?trust=ZZZ", headers=READ)
        assert unknown.status_code == 404
        extra = await api.get("/v1/reports/monthly/2025-05.pdf?raw=true", headers=READ)
        assert extra.status_code == 422

    out = tmp_path / "packs"
    args = argparse.Namespace(month="2025-05", trust="RTH", out=out)
    assert await monthly_command(args, settings) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"best-monthly-2025-05-RTH.{x}" for x in ("html", "pdf", "zip")]
    text = " ".join(pdf_lines((out / "best-monthly-2025-05-RTH.pdf").read_bytes()))
    assert "Oxford University Hospitals (RTH)" in text
