"""Monthly series (domain.md, "Rollout over time") over real NATS and the real database:
the scripted dataset (March 2024 to May 2025, read in June 2025: 16 months) published
shuffled with duplicates and an outcome correction, read from two instances, every level,
raw and published, JSON and CSV, then again after `ibest reporting rebuild`."""

from __future__ import annotations

import argparse
import csv
import io
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from services.reporting.cli import rebuild_command
from services.reporting.service import build_spec
from services.reporting.settings import ReportingSettings
from shared.followup import assessment_date
from tests.harness import publish_raw, running_service, wait_for
from tests.reporting import dataset as ds
from tests.reporting import months_oracle
from tests.reporting.test_service import TOKENS

READ = {"Authorization": "Bearer reader-token"}
RAW = {"Authorization": "Bearer raw-token"}
PLACES = [
    (None, None),
    ("RTH", None),
    ("RXF", None),
    ("R0A", None),
    ("RTH", "RTH08"),
    ("RTH", "RTH01"),
    ("RXF", "RXF01"),
    ("R0A", "R0A02"),
]
CURRENT = ds.NOW.strftime("%Y-%m")


SPEC = build_spec(ReportingSettings(IBEST_REPORTING_TOKENS=TOKENS))


@pytest.fixture(autouse=True)
def with_version_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract judges events against the dataset's catalogue (it has a version 2, the
    mover's re-enrolment); the oracle parses them with it too."""
    monkeypatch.setattr("shared.envelope.catalogue", lambda: ds.CATALOGUE)


def clock() -> Any:
    return ds.NOW


def path(trust: str | None, site: str | None, tail: str = "/months") -> str:
    if trust is None:
        return f"/v1/national{tail}"
    return f"/v1/trusts/{trust}" + (f"/sites/{site}" if site else "") + tail


async def get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] = READ, /, **params: str
) -> httpx.Response:
    return await client.get(url, headers=headers, params=params)


def csv_value(value: Any) -> str:
    return "" if value is None else str(value)


def baselines_due_and_recorded(answer: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """Per month of a months answer: baselines, month-3 follow-ups due and recorded."""
    figures = answer["figures"]
    return dict(
        zip(
            answer["months"],
            zip(
                figures["patients_baseline"],
                figures["followup_due_month_3"],
                figures["patients_month_3"],
                strict=True,
            ),
            strict=True,
        )
    )


async def check_every_place(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every place's series, raw and published, equals the oracle's in JSON and CSV, and its
    last month equals the current figures. Returns the answers (to compare after rebuild)."""
    answers = []
    for trust, site in PLACES:
        for raw in (False, True):
            headers = RAW if raw else READ
            params = {"raw": "true"} if raw else {}
            body = (await get(client, path(trust, site), headers, **params)).json()
            months, expected = months_oracle.series(
                ds.events(),
                CURRENT,
                assessment_date(ds.NOW),
                trust=trust,
                site=site,
                published=not raw and trust is not None,
            )
            where = f"{trust}/{site} raw={raw}"
            assert body["months"] == months, where
            assert body["figures"] == expected, where
            assert months[-1] == CURRENT and len(months) >= 3
            current = (await get(client, path(trust, site, ""), headers, **params)).json()
            for name, values in body["figures"].items():
                assert values[-1] == current["figures"][name], (where, name)
            response = await get(
                client, path(trust, site), {**headers, "Accept": "text/csv"}, **params
            )
            assert response.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(response.text)))
            assert [r["month"] for r in rows] == months
            for i, row in enumerate(rows):
                assert row["level"] == body["level"] and row["trustcode"] == (trust or "")
                for name, values in body["figures"].items():
                    assert row[name] == csv_value(values[i]), (where, name, months[i])
            answers.append(body)
    return answers


@pytest.mark.slow
async def test_monthly_series_exact_at_every_level_json_csv_and_after_rebuild(
    settings: Settings, js: JetStreamContext
) -> None:
    sends = ds.shuffled_with_duplicates(seed=18)
    half = len(sends) // 2
    for event, msg_id in sends[:half]:
        assert await publish_raw(js, event, msg_id=msg_id)
    async with (
        running_service(SPEC, settings, clock) as a,
        running_service(SPEC, settings, clock) as b,
        httpx.AsyncClient(base_url=a, timeout=10) as ca,
        httpx.AsyncClient(base_url=b, timeout=10) as cb,
    ):
        for event, msg_id in sends[half:]:
            assert await publish_raw(js, event, msg_id=msg_id)

        async def settled() -> bool:
            info: ConsumerInfo = await js.consumer_info(EVENTS_STREAM, "reporting")
            body = (await get(ca, "/v1/national")).json()
            return (
                info.num_pending == 0
                and info.num_ack_pending == 0
                and body["figures"]["patients_baseline"] == ds.NATIONAL["patients_baseline"]
                and body["figures"]["clinicians_enrolled"] == ds.NATIONAL["clinicians_enrolled"]
            )

        await wait_for(settled, 60, "every event applied")
        national = (await get(ca, "/v1/national/months")).json()
        # By hand: 16 months; the March 2024 baselines' month-3 follow-ups are due on
        # 31 May 2024 and recorded in June 2024; the clinician who moved to RXF01 in March
        # 2025 counts there from January 2025 (the place the current figures count them).
        assert national["months"][0] == "2024-03" and national["months"][-1] == "2025-06"
        assert len(national["months"]) == 16
        f = baselines_due_and_recorded(national)
        assert f["2024-03"] == (9, 0, 0) and f["2024-04"] == (9, 0, 0)
        assert f["2024-05"] == (9, 9, 0) and f["2024-06"] == (9, 9, 9)
        rxf = (await get(ca, "/v1/trusts/RXF/months", RAW, raw="true")).json()
        assert rxf["months"][0] == "2025-01"
        assert rxf["figures"]["clinicians_enrolled"][0] == 1
        assert rxf["figures"]["clinicians_completed"][:2] == [0, 1]

        before = await check_every_place(ca)
        # Both instances answer alike; narrowing, bad input, scopes.
        assert (await get(cb, "/v1/trusts/RTH/months")).json() == before[2]
        narrowed = (
            await get(cb, "/v1/national/months", **{"from": "2025-01", "to": "2025-03"})
        ).json()
        assert narrowed["months"] == ["2025-01", "2025-02", "2025-03"]
        i = national["months"].index("2025-01")
        assert (
            narrowed["figures"]["clinicians_enrolled"]
            == national["figures"]["clinicians_enrolled"][i : i + 3]
        )
        for params, field, says in (
            ({"from": "2025-13"}, "from", "not a month"),
            ({"to": "25-01"}, "to", "not a month"),
            ({"from": "2025-04", "to": "2025-03"}, "from", "after"),
        ):
            response = await get(cb, "/v1/national/months", **params)
            assert response.status_code == 422
            [error] = response.json()["errors"]
            assert error["field"] == f"query.{field}" and says in error["message"]
        response = await get(cb, "/v1/national/months", month="2025-01")
        assert response.status_code == 422  # an unknown parameter, like every route
        assert (await get(cb, "/v1/trusts/RTH/months", READ, raw="true")).status_code == 403
        assert (await cb.get("/v1/national/months")).status_code == 401
        assert (await get(cb, "/v1/trusts/RYJ/months")).status_code == 404
        assert (await get(cb, "/v1/trusts/RTH/sites/RTH99/months")).status_code == 404
        openapi = (await cb.get("/openapi.json")).json()
        assert {
            "/v1/national/months",
            "/v1/trusts/{trustcode}/months",
            "/v1/trusts/{trustcode}/sites/{sitecode}/months",
        } <= set(openapi["paths"])
        names = {p["name"] for p in openapi["paths"]["/v1/national/months"]["get"]["parameters"]}
        assert {"from", "to", "raw"} <= names

        assert await rebuild_command(argparse.Namespace(), settings) == 0
        assert await check_every_place(cb) == before
