"""The reporting API under hostile requests, and disclosure control across random datasets.

- Missing, wrong and under-scoped tokens are refused on every route; unknown trusts and sites
  are 404, malformed codes 422; hostile query strings and paths never cause a 5xx and never
  yield exact figures to a token without the raw scope.
- Hypothesis generates small datasets (each on trusts of its own); once published, no trust or
  site figure in JSON, CSV or /metrics reveals a count of 1 to 7, and every published count is
  the disclosure rule applied to the true count.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.reporting.service import SPEC as REPORTING
from tests.faults.stack import RAW_TOKEN, READ_TOKEN
from tests.harness import cloud_event, publish_raw, running_service, wait_for

ROUTES = [
    "/v1/national",
    "/v1/trusts",
    "/v1/trusts/RTH",
    "/v1/trusts/RTH/sites/RTH08",
    "/v1/funnel/clinicians_completed",
    "/v1/funnel/followup_rate_month_3",
    "/v1/funnel/improved_share?measure=rmdq&timepoint=month_3",
    "/v1/national/months",
    "/v1/trusts/RTH/months",
    "/v1/trusts/RTH/sites/RTH08/months",
]
HOSTILE_VALUES = [
    "' OR '1'='1",
    "1; DROP TABLE patients; --",
    '{"$ne": null}',
    '{"$where": "sleep(1000)"}',
    "$gt",
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "\u202e\u0000x",
    "名前🙂",
    "A" * 20_000,
    "9" * 400,
    "-1",
    "NaN",
    "<script>alert(1)</script>",
]
COUNT_SUFFIXES = (
    "enrolled",
    "started",
    "completed",
    "intending",
    "delivering",
    "classes_started",
    "sites_running_classes",
    "patients_baseline",
    "patients_month_3",
    "patients_month_12",
    "followup_due_month_3",
    "followup_due_month_12",
)
T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{RAW_TOKEN}:raw,{READ_TOKEN}:read")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")


def published(n: int) -> int | str:
    """The disclosure rule below national level (domain.md)."""
    if n == 0:
        return 0
    if n <= 7:
        return "*"
    return 5 * round(n / 5)


def counts_in(figures: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every count in a figures document: plain counts, by-profession counts, outcome n."""
    out: list[tuple[str, Any]] = []
    if isinstance(figures, dict):
        for key, value in figures.items():
            here = f"{path}.{key}" if path else key
            if isinstance(value, dict):
                out += counts_in(value, here)
            elif (
                key == "n"
                or "_by_profession" in here
                or key in COUNT_SUFFIXES
                or key.startswith("clinicians_")
            ):
                out.append((here, value))
    return out


def assert_disclosed(figures: Any, where: str) -> None:
    for name, value in counts_in(figures):
        if "rate" in name:
            continue
        ok = value in (0, "*", None) or (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value % 5 == 0
            and value >= 10
        )
        assert ok, f"{where}: {name} = {value!r} is not disclosure-controlled"


async def seed_small(js: JetStreamContext) -> None:
    for i in range(3):
        await publish_raw(
            js,
            cloud_event(
                "clinician.enrolled",
                {"clinician_ref": f"api-{i}", "profession": "nurse", "course_version": "1"},
            ),
        )


async def test_tokens_are_required_and_scoped_on_every_route(
    settings: Settings, js: JetStreamContext, tokens: None
) -> None:
    await seed_small(js)
    async with (
        running_service(REPORTING, settings) as base,
        httpx.AsyncClient(base_url=base) as api,
    ):
        for route in ROUTES:
            for headers in (
                {},
                {"Authorization": "Bearer nope"},
                {"Authorization": f"Basic {READ_TOKEN}"},
                {"Authorization": f"Bearer {READ_TOKEN}x"},
                {"Authorization": "Bearer"},
                {"Authorization": RAW_TOKEN},
            ):
                r = await api.get(route, headers=headers)
                assert r.status_code == 401, (route, headers, r.status_code)
                assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
                assert "figures" not in r.text
            sep = "&" if "?" in route else "?"
            r = await api.get(
                f"{route}{sep}raw=true", headers={"Authorization": f"Bearer {READ_TOKEN}"}
            )
            assert r.status_code == 403, (route, r.status_code)
            for raw in ("yes", "1", "on", "TRUE", ""):  # only true and false are values
                r = await api.get(
                    f"{route}{sep}raw={raw}", headers={"Authorization": f"Bearer {READ_TOKEN}"}
                )
                assert r.status_code == 422, (route, raw, r.status_code)
                assert r.json()["errors"][0]["field"] == "query.raw"
            r = await api.get(route, headers={"Authorization": f"Bearer {RAW_TOKEN}"})
            assert r.status_code in (200, 404), (route, r.status_code, r.text)


@pytest.mark.slow
async def test_hostile_paths_and_query_strings_never_fail_or_leak(
    settings: Settings, js: JetStreamContext, tokens: None
) -> None:
    await seed_small(js)
    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with (
        running_service(REPORTING, settings) as base,
        httpx.AsyncClient(base_url=base, headers=read) as api,
    ):
        await wait_for(lambda: _enrolled(api, 3), 30, "seed applied")
        assert (await api.get("/v1/trusts/ZZZ")).status_code == 404
        assert (await api.get("/v1/trusts/RTH/sites/RTH99")).status_code == 404
        assert (await api.get("/v1/trusts/RTH/sites/RXF01")).status_code in (404, 422)
        assert (await api.get("/v1/trusts/rth")).status_code == 200  # upper-cased
        for bad in ("R", "RTHX", "R T", "ZZ!", "..", "%2e%2e"):
            r = await api.get(f"/v1/trusts/{bad}")
            assert r.status_code in (404, 422), (bad, r.status_code)
        requests: list[tuple[str, Any]] = []
        for value in HOSTILE_VALUES:
            requests += [
                ("/v1/trusts", {"raw": value}),
                ("/v1/trusts/RTH", [("raw", "false"), ("raw", value)]),
                ("/v1/funnel/improved_share", {"measure": value, "timepoint": "month_3"}),
                ("/v1/funnel/improved_share", {"measure": "rmdq", "timepoint": value}),
                (f"/v1/funnel/{quote(value, safe='')}", {}),
                (f"/v1/trusts/{quote(value, safe='')}", {}),
                (f"/v1/trusts/RTH/sites/{quote(value, safe='')}", {}),
                ("/v1/national", {"trust": value, "$where": value}),
            ]
        requests += [
            ("/v1/trusts/RTH", [("raw", "false"), ("raw", "true")]),
            ("/v1/trusts/RTH", [("raw", "true"), ("raw", "false")]),
            ("/v1/trusts/RTH/../../national", {}),
            ("/v1/trusts/RTH/sites/RTH08/../../../trusts", {"raw": "yes"}),
        ]
        for path, params in requests:
            for accept in ("application/json", "text/csv"):
                r = await api.get(path, params=params, headers={"Accept": accept})
                assert r.status_code < 500, (path, params, r.status_code, r.text[:300])
                # The funnel answers JSON only: Accept: text/csv alone is 406 there.
                allowed = (200, 403, 404, 405, 414, 422) + (
                    (406,) if accept == "text/csv" and "/funnel/" in path else ()
                )
                assert r.status_code in allowed, (path, accept, r.status_code)
                if r.status_code == 200 and accept == "application/json":
                    body = r.json()
                    assert body.get("raw") in (None, False), (path, params)
                    if body.get("level") != "national":
                        assert_disclosed(body.get("figures"), f"{path} {params}")
                        for place in body.get("trusts", []) + body.get("sites", []):
                            assert_disclosed(place["figures"], f"{path} {params}")


async def _enrolled(api: httpx.AsyncClient, n: int) -> bool:
    r = await api.get("/v1/national")
    return r.status_code == 200 and r.json()["figures"]["clinicians_enrolled"] == n


# --- random datasets -----------------------------------------------------------------------


@dataclass
class Dataset:
    """Per site: clinicians enrolled / started / completed, classes, patients, followed."""

    sites: dict[tuple[str, str], tuple[int, int, int, int, int, int]] = field(default_factory=dict)


site_counts = st.tuples(
    st.integers(0, 12),
    st.integers(0, 12),
    st.integers(0, 12),
    st.integers(0, 3),
    st.integers(0, 12),
    st.integers(0, 12),
).map(lambda t: (t[0], min(t[1], t[0]), min(t[2], t[1], t[0]), t[3], t[4], min(t[5], t[4])))


def datasets(count: int) -> list[Dataset]:
    """`count` datasets, each on trusts of its own (Q<k><n>), the same on every run."""
    out: list[Dataset] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(st.lists(site_counts, min_size=1, max_size=3), min_size=1, max_size=3))
    def collect(trusts: list[list[tuple[int, int, int, int, int, int]]]) -> None:
        k = len(out)
        ds = Dataset()
        for t, sites in enumerate(trusts):
            trust = f"Q{k % 36:X}{t}" if k < 16 else f"W{k - 16:X}{t}"
            for s, counts in enumerate(sites):
                ds.sites[(trust, f"{trust}0{s}")] = counts
        out.append(ds)

    collect()
    return out


def events_of(k: int, ds: Dataset) -> list[dict[str, Any]]:
    events = []
    for (trust, site), (
        enrolled,
        started,
        completed,
        classes,
        patients,
        followed,
    ) in ds.sites.items():

        def ev(
            name: str, data: dict[str, Any], minutes: int, trust: str = trust, site: str = site
        ) -> dict[str, Any]:
            return cloud_event(
                name, data, trust=trust, site=site, time=T0 + timedelta(minutes=minutes)
            )

        for i in range(enrolled):
            ref = f"d{k}-{site}-{i}"
            events.append(
                ev(
                    "clinician.enrolled",
                    {"clinician_ref": ref, "profession": "nurse", "course_version": "1"},
                    i,
                )
            )
            if i < started:
                events.append(
                    ev(
                        "clinician.training_started",
                        {"clinician_ref": ref, "course_version": "1"},
                        100 + i,
                    )
                )
            if i < completed:
                events.append(
                    ev(
                        "clinician.training_completed",
                        {"clinician_ref": ref, "course_version": "1"},
                        200 + i,
                    )
                )
        for c in range(classes):
            events.append(
                ev(
                    "class.started",
                    {
                        "class_id": f"cl-{site}-{c}",
                        "facilitator_refs": ["x1"],
                        "planned_sessions": 6,
                    },
                    300 + c,
                )
            )
        for p in range(patients):
            ref = f"pt{k}-{site}-{p}"
            events.append(
                ev(
                    "patient.assessed",
                    {"patient_ref": ref, "timepoint": "baseline", "measures": {"rmdq": 12}},
                    400 + p,
                )
            )
            if p < followed:
                events.append(
                    ev(
                        "patient.assessed",
                        {"patient_ref": ref, "timepoint": "month_3", "measures": {"rmdq": 4}},
                        400 + p + 92 * 24 * 60,
                    )
                )
    return events


TRUE_COUNTS = (
    "clinicians_enrolled",
    "clinicians_started",
    "clinicians_completed",
    "classes_started",
    "patients_baseline",
    "patients_month_3",
)


def true_counts(counts: tuple[int, ...]) -> dict[str, int]:
    return dict(zip(TRUE_COUNTS, counts[:4] + counts[4:], strict=True))


def metric_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line.startswith("ibest_") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels_text, value = rest.rsplit("} ", 1)
        labels = dict(part.split("=", 1) for part in labels_text.split('",') if "=" in part)
        out.append((name, {k: v.strip('"') for k, v in labels.items()}, float(value)))
    return out


@pytest.mark.slow
async def test_published_figures_never_reveal_small_counts_below_national(
    settings: Settings, js: JetStreamContext, tokens: None
) -> None:
    sets = datasets(12)
    total: dict[str, int] = dict.fromkeys(TRUE_COUNTS, 0)
    for k, ds in enumerate(sets):
        for event in events_of(k, ds):
            await publish_raw(js, event)
        for counts in ds.sites.values():
            for name, n in true_counts(counts).items():
                total[name] += n
    async with (
        running_service(REPORTING, settings) as base,
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {READ_TOKEN}"}) as api,
    ):

        async def all_applied() -> bool:
            figures = (await api.get("/v1/national")).json()["figures"]
            return {n: figures[n] for n in total} == total

        await wait_for(all_applied, 60, "every dataset applied (national totals exact)")
        trusts = (await api.get("/v1/trusts")).json()
        assert trusts["raw"] is False
        for place in trusts["trusts"]:
            assert_disclosed(place["figures"], place["trustcode"])
        for ds in sets:
            by_trust: dict[str, dict[str, int]] = {}
            for (trust, site), counts in ds.sites.items():
                truth = true_counts(counts)
                for name, n in truth.items():
                    by_trust.setdefault(trust, dict.fromkeys(TRUE_COUNTS, 0))[name] += n
                r = await api.get(f"/v1/trusts/{trust}/sites/{site}")
                if r.status_code == 404:  # a site with nothing in it is unknown
                    assert not any(truth.values()), (site, truth)
                    continue
                figures = r.json()["figures"]
                assert_disclosed(figures, site)
                for name, n in truth.items():
                    assert figures[name] == published(n), (site, name, n, figures[name])
            for trust, truth in by_trust.items():
                r = await api.get(f"/v1/trusts/{trust}")
                if r.status_code == 404:
                    assert not any(truth.values())
                    continue
                report = r.json()
                assert_disclosed(report["figures"], trust)
                for name, n in truth.items():
                    assert report["figures"][name] == published(n), (trust, name, n)
                for place in report["sites"]:
                    assert_disclosed(place["figures"], place["sitecode"])
                table = await api.get(f"/v1/trusts/{trust}", headers={"Accept": "text/csv"})
                assert table.status_code == 200
                for row in csv.DictReader(io.StringIO(table.text)):
                    if row["level"] == "national":
                        continue
                    for column, value in row.items():
                        if (
                            column in TRUE_COUNTS
                            or column.endswith(".n")
                            or "_by_profession" in column
                        ):
                            assert value not in {str(i) for i in range(1, 8)}, (row, column)

        async def snapshot_fresh() -> str:
            text = (await api.get("/metrics")).text
            return (
                text
                if f"ibest_clinicians_enrolled {float(total['clinicians_enrolled'])}" in text
                else ""
            )

        text = await wait_for(snapshot_fresh, 30, "metrics snapshot refreshed")
        # Figures are gauges; counters and histograms with a trust label (the gateway's
        # requests, in this process's shared registry) and share ratios are operations.
        operational = ("_total", "_created", "_bucket", "_count", "_sum", "_ratio")
        for name, labels, value in metric_samples(text):
            if (
                labels.get("trust")
                and not name.endswith(operational)
                and (
                    "rate" not in name
                    and "share" not in name
                    and "mean" not in name
                    and "seconds" not in name
                    and "timestamp" not in name
                )
            ):
                assert not (1 <= value <= 7), (name, labels, value)
                assert value == 0 or value % 5 == 0, (name, labels, value)
