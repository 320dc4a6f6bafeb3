"""`ibest import futurelearn` over real NATS and the database, with enrolment and reporting:
the funnel per trust and site equals what the exports imply (domain.md); importing the same
files again publishes nothing; a later export publishes only the difference."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.mongo import mongo_client
from ibest.backbone.publisher import EventPublisher
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from ibest.cli import build_parser
from ibest.simulate.futurelearn import CourseRunModel, Expected
from services.enrolment.service import SPEC as ENROLMENT
from services.gateway.courses import bootstrap
from services.gateway.courses.adapters.files import ExportDirectory
from services.gateway.courses.application import CourseImport
from services.gateway.courses.domain.report import ImportReport
from services.gateway.courses.settings import CourseSettings
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from services.reporting.service import SPEC as REPORTING
from tests.harness import ID_KEY, dead_letters, running_service, wait_for

TOKEN = "courses-raw"
FIRST = datetime(2026, 6, 1, tzinfo=UTC)
LATER = datetime(2026, 9, 1, tzinfo=UTC)


@asynccontextmanager
async def importer(
    settings: Settings, js: JetStreamContext, key: bytes
) -> AsyncIterator[CourseImport]:
    client = mongo_client(settings)
    try:
        yield await bootstrap.importer(
            key,
            client[settings.database_of("gateway")],
            EventPublisher(js, "gateway", id_key=ID_KEY),
            lambda: datetime.now(UTC),
        )
    finally:
        await client.close()


TRAINING = ("clinician.enrolled", "module.started", "module.completed")


async def stored_events(js: JetStreamContext) -> int:
    """Training events in the stream (enrolment's derived events left aside)."""
    info = await js.stream_info(EVENTS_STREAM, subjects_filter="ibest.v1.>")
    subjects = info.state.subjects or {}
    return sum(n for subject, n in subjects.items() if subject.split(".", 3)[3] in TRAINING)


def by_type(report: ImportReport) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for (_, kind), n in report.published.items():
        kinds[kind] += n
    return kinds


def fact_types(facts: set[tuple[str, str, str]]) -> Counter[str]:
    return Counter(kind for _, kind, _ in facts)


async def assert_funnel(api: httpx.AsyncClient, expected: Expected) -> None:
    """Reporting's raw funnel, nationally, per trust and per site, equals the exports'."""

    async def national() -> dict[str, Any] | None:
        figures: dict[str, Any] = (await api.get("/v1/national?raw=true")).json()["figures"]
        want = (
            sum(expected.enrolled.values()),
            sum(expected.started.values()),
            sum(expected.completed.values()),
        )
        got = (
            figures["clinicians_enrolled"],
            figures["clinicians_started"],
            figures["clinicians_completed"],
        )
        return figures if got == want else None

    await wait_for(national, 240, "the funnel the exports imply, nationally")
    places = set(expected.enrolled)
    for trust in sorted({t for t, _ in places}):
        figures = (await api.get(f"/v1/trusts/{trust}?raw=true")).json()["figures"]
        got = (
            figures["clinicians_enrolled"],
            figures["clinicians_started"],
            figures["clinicians_completed"],
        )
        assert got == expected.funnel(trust), trust
    for trust, site in sorted(places):
        figures = (await api.get(f"/v1/trusts/{trust}/sites/{site}?raw=true")).json()["figures"]
        got = (
            figures["clinicians_enrolled"],
            figures["clinicians_started"],
            figures["clinicians_completed"],
        )
        assert got == expected.funnel(trust, site), site


@pytest.mark.slow
async def test_exports_become_the_funnel_they_imply_and_reimport_adds_only_the_difference(
    settings: Settings,
    js: JetStreamContext,
    key: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    model = CourseRunModel(1500)
    model.write(tmp_path / "june", FIRST)
    model.write(tmp_path / "september", LATER)
    first, later = model.expected(FIRST), model.expected(LATER)
    # The later export holds what makes re-importing interesting: learners who answered the
    # registration questions only after June, and re-done steps whose last completion moved.
    assert later.facts > first.facts and first.unmapped > 0 and later.unmapped > 0
    assert any(
        x.enrolled_at <= FIRST and not x.mapped(FIRST) and x.mapped(LATER) for x in model.learners
    )
    assert any(
        s.completions[0] <= FIRST < s.completions[-1] <= LATER
        for x in model.learners
        if x.mapped(FIRST)
        for s in x.steps
    )

    async with importer(settings, js, key) as course_import:
        report = await course_import.run(ExportDirectory(tmp_path / "june"))
    assert by_type(report) == fact_types(first.facts)
    assert len(report.unmapped) == first.unmapped and report.not_learners == 6
    steps = report.rows_read["step-activity"]
    assert [(r.file, r.line) for r in report.refused if "step" in r.file] == [
        ("ibest-3_step-activity.csv", steps),
        ("ibest-3_step-activity.csv", steps + 1),
    ]
    answers = [r for r in report.refused if "question" in r.file]
    assert len(answers) == first.unusable_answers > 0
    assert all(r.reason.startswith("unusable mapping: site 'Oxford'") for r in answers)
    responses = (tmp_path / "june" / "ibest-3_question-response.csv").read_text().splitlines()
    assert all(",Oxford," in responses[r.line - 1] for r in answers)
    assert await stored_events(js) == len(first.facts)

    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running_service(ENROLMENT, settings))
        reporting = await stack.enter_async_context(running_service(REPORTING, settings))
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"})
        )
        await assert_funnel(api, first)

        # The same files again: nothing new, nothing published.
        async with importer(settings, js, key) as course_import:
            again = await course_import.run(ExportDirectory(tmp_path / "june"))
        assert again.events == 0 and again.duplicates_skipped == len(first.facts)
        assert await stored_events(js) == len(first.facts)

        # A later export: only what is new (late registrations, further progress); re-done
        # steps that moved a completed module's last completion publish nothing.
        async with importer(settings, js, key) as course_import:
            difference = await course_import.run(ExportDirectory(tmp_path / "september"))
        assert by_type(difference) == fact_types(later.facts - first.facts)
        assert difference.duplicates_skipped == len(first.facts)
        assert await stored_events(js) == len(later.facts)
        await assert_funnel(api, later)
    assert await dead_letters(js) == []


async def test_a_file_missing_a_column_is_refused_before_anything_is_published(
    settings: Settings,
    js: JetStreamContext,
    course_settings: CourseSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def ibest(*argv: str) -> int:
        """The `ibest` command line, in this process, against the test's servers."""
        args = build_parser().parse_args(list(argv))
        code: int = await args.func(args, settings)
        return code

    model = CourseRunModel(60)
    model.write(tmp_path, FIRST)
    steps = tmp_path / "ibest-3_step-activity.csv"
    lines = steps.read_text().splitlines()
    steps.write_text("\n".join([lines[0].replace("last_completed_at", "completed"), *lines[1:]]))

    assert await ibest("import", "futurelearn", str(tmp_path)) == 2
    said = capsys.readouterr().out
    assert "ibest-3_step-activity.csv: missing column(s) last_completed_at" in said
    assert await stored_events(js) == 0

    # Fixed, a dry run says per trust what would be published, and publishes nothing.
    steps.write_text("\n".join(lines))
    assert await ibest("import", "futurelearn", str(tmp_path), "--dry-run") == 0
    said = capsys.readouterr().out
    expected = model.expected(FIRST)
    assert "DRY RUN" in said and f"events would publish: {len(expected.facts)}" in said
    assert f"unmapped learners: {expected.unmapped}" in said
    assert "ibest-3_step-activity.csv line" in said
    trust = sorted({t for t, _ in expected.enrolled})[0]
    assert f"  {trust}: clinician.enrolled {expected.funnel(trust)[0]}," in said
    assert await stored_events(js) == 0

    assert await ibest("import", "futurelearn", str(tmp_path)) == 0
    assert await stored_events(js) == len(expected.facts)

    # The report is kept with the ledger and shown on the gateway's /metrics.
    own = GatewaySettings(IBEST_GATEWAY_RATE=10_000, IBEST_GATEWAY_BURST=10_000)
    shown = [
        f'ibest_course_import_last{{course_run="ibest-3",what="events_published"}} '
        f"{float(len(expected.facts))}",
        f'ibest_course_import_last{{course_run="ibest-3",what="unmapped_learners"}} '
        f"{float(expected.unmapped)}",
        f'ibest_course_import_last{{course_run="ibest-3",what="refused_rows"}} '
        f"{float(expected.refused_rows + expected.unusable_answers)}",
    ]
    async with (
        running_service(build_spec(own, course_settings), settings) as gateway,
        httpx.AsyncClient(base_url=gateway) as http,
    ):

        async def metrics() -> bool:
            text = (await http.get("/metrics")).text
            return all(line in text for line in shown)

        await wait_for(metrics, 20, "the import report on /metrics")
