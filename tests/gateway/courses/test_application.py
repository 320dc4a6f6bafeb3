"""The course-platform use cases on in-memory ports (tests/fakes): what a weekly import of
cumulative exports publishes, and what it never publishes twice."""

from __future__ import annotations

import csv
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.gateway.courses.adapters.files import ExportDirectory
from services.gateway.courses.application import CourseImport, ImportMetrics
from services.gateway.courses.domain.exports import ExportError
from services.gateway.courses.domain.learners import Answers, clinician_of, learner_key
from services.gateway.courses.statements import XapiRefusal, XapiStatements, XapiStored, XapiWhy
from shared.catalogue import catalogue
from shared.keyed import clinician_pseudonym
from tests.fakes.courses import (
    FakeCourseMetrics,
    FakeImportLedger,
    FakeLearnerStore,
    FakeStatementLedger,
)
from tests.fakes.gateway import World, world
from tests.fakes.publisher import FakePublisher

KEY = b"k" * 32
STEPS = [f"1.{n}" for n in range(1, 6)]  # m01-understanding-back-pain
ENROL = ["learner_id", "enrolled_at", "role", "country"]
ACTIVITY = [
    "learner_id",
    "step",
    "week_number",
    "step_number",
    "first_visited_at",
    "last_completed_at",
]


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def t(day: int, hour: int = 9) -> str:
    return f"2026-03-{day:02d} {hour:02d}:00:00 UTC"


def export(directory: Path, activity: list[list[str]], mapping: list[list[str]]) -> ExportDirectory:
    directory.mkdir(exist_ok=True)
    (directory / "course-run.toml").write_text(
        'course_run = "ibest-9"\ncourse_version = "1"\nmapping_file = "learners.csv"\n'
    )
    columns = ["learner_id", "sitecode", "profession", "registration_number", "contact_email"]
    write(directory / "learners.csv", columns[: max(len(r) for r in mapping)], mapping)
    write(
        directory / "ibest-9_enrolments.csv",
        ENROL,
        [["a", t(1), "learner", "GB"], ["b", t(1), "learner", "GB"], ["e", t(1), "educator", "GB"]],
    )
    write(directory / "ibest-9_step-activity.csv", ACTIVITY, activity)
    return ExportDirectory(directory)


def every_step(learner: str, done_day: int) -> list[list[str]]:
    # Out of order: the last step first; completions on different days.
    return [
        [learner, s, "1", s[2:], t(2 + i), t(done_day if i == 4 else 3 + i)]
        for i, s in reversed(list(enumerate(STEPS)))
    ]


def importer() -> tuple[CourseImport, FakePublisher, FakeImportLedger, FakeLearnerStore]:
    stream, ledger, learners = FakePublisher(), FakeImportLedger(), FakeLearnerStore()
    return (
        CourseImport(learners, ledger, stream, KEY, lambda: datetime(2026, 4, 1, tzinfo=UTC)),
        stream,
        ledger,
        learners,
    )


async def test_a_module_is_started_at_the_first_visit_and_completed_as_first_seen(
    tmp_path: Path,
) -> None:
    use_case, stream, ledger, _ = importer()
    mapping = [["a", "RTH08", "physiotherapist", "PH 123456"]]
    report = await use_case.run(export(tmp_path / "w1", every_step("a", 20), mapping))
    published = {e.type: e for e in stream.published}
    assert report.events == 3 and set(published) == {
        "uk.nhs.ibest.clinician.enrolled.v1",
        "uk.nhs.ibest.module.started.v1",
        "uk.nhs.ibest.module.completed.v1",
    }
    started = published["uk.nhs.ibest.module.started.v1"]
    completed = published["uk.nhs.ibest.module.completed.v1"]
    assert started.time == datetime(2026, 3, 2, 9, tzinfo=UTC)  # the earliest first visit
    assert completed.time == datetime(2026, 3, 20, 9, tzinfo=UTC)  # the latest completion
    assert completed.data.clinician_ref == clinician_pseudonym(KEY, "PH123456")
    assert completed.sitecode == "RTH08" and completed.trustcode == "RTH"
    assert [u.learner_id for u in report.unmapped] == ["b"] and report.not_learners == 1

    # The learner re-does the last step a month later: the export moves its last completion,
    # the imported completion stays as first seen, and nothing is published.
    later = await use_case.run(export(tmp_path / "w2", every_step("a", 28), mapping))
    assert later.events == 0 and later.duplicates_skipped == 3 and len(stream.published) == 3
    assert len(ledger.entries) == 3


async def test_an_unmapped_learner_is_imported_once_mapped_and_a_partial_module_is_not_complete(
    tmp_path: Path,
) -> None:
    use_case, _, _, learners = importer()
    partial = every_step("b", 20)[:-1]  # b never completes one step (no row for it at all)
    activity = every_step("a", 20) + partial
    first = await use_case.run(export(tmp_path / "w1", activity, [["a", "RTH08", "nurse", ""]]))
    assert [u.learner_id for u in first.unmapped] == ["b"]
    mapping = [["a", "RTH08", "nurse", ""], ["b", "RXF02", "Other", ""]]
    second = await use_case.run(export(tmp_path / "w2", activity, mapping))
    assert second.unmapped == [] and dict(second.published) == {
        ("RXF", "clinician.enrolled"): 1,
        ("RXF", "module.started"): 1,
    }
    assert len(learners.learners) == 2 and not any(c.linkable for c in learners.learners.values())


async def test_a_work_email_travels_on_the_enrolment_only(tmp_path: Path) -> None:
    use_case, stream, _, learners = importer()
    source = export(
        tmp_path / "w1", every_step("a", 20), [["a", "RTH08", "nurse", "", "a@nhs.net"]]
    )
    await use_case.run(source)
    emails = {
        e.type.split(".")[-2]: getattr(e.data, "contact_email", None) for e in stream.published
    }
    assert emails == {"enrolled": "a@nhs.net", "started": None, "completed": None}
    assert "a@nhs.net" not in str(learners.learners)  # the mapping keeps no email


async def test_a_dry_run_publishes_and_records_nothing(tmp_path: Path) -> None:
    use_case, stream, ledger, learners = importer()
    source = export(tmp_path / "w1", every_step("a", 20), [["a", "RTH08", "nurse", ""]])
    report = await use_case.run(source, dry_run=True)
    assert report.per_trust() == {
        "RTH": {"clinician.enrolled": 1, "module.completed": 1, "module.started": 1}
    }
    assert stream.published == [] and ledger.entries == {} and ledger.reports == []
    assert learners.learners == {}


async def test_unacknowledged_facts_are_not_recorded_and_go_on_the_next_run(tmp_path: Path) -> None:
    use_case, stream, ledger, _ = importer()
    source = export(tmp_path / "w1", every_step("a", 20), [["a", "RTH08", "nurse", ""]])
    stream.down = True
    failed = await use_case.run(source)
    assert failed.not_stored == 3 and ledger.entries == {}
    assert "NOT STORED: 3 events" in "\n".join(failed.lines())
    stream.down = False
    again = await use_case.run(source)
    assert again.events == 3 and again.not_stored == 0


async def test_rows_refused_with_file_and_line_the_rest_imported(tmp_path: Path) -> None:
    use_case, _, _, _ = importer()
    rows = every_step("a", 20)
    rows[1][4] = "yesterday"
    rows.append(["a", "7.7", "7", "7", t(3), ""])
    rows.append(["a", "1.1", "1", "1", t(3), "2026-03-04", "09:00"])
    report = await use_case.run(export(tmp_path / "w1", rows, [["a", "RTH08", "nurse", ""]]))
    assert [str(r) for r in report.refused] == [
        "ibest-9_step-activity.csv line 3: first_visited_at 'yesterday' is not a time like "
        "2025-10-08 12:00:00 UTC",
        "ibest-9_step-activity.csv line 7: step '7.7' is in no module of course version 1 "
        "(the catalogue's step map)",
        "ibest-9_step-activity.csv line 8: 7 cells, more than the header's columns",
    ]
    # The refused row's step has no completion now: the module is started, not completed.
    assert dict(report.published) == {
        ("RTH", "clinician.enrolled"): 1,
        ("RTH", "module.started"): 1,
    }


async def test_a_missing_file_or_column_refuses_the_whole_import(tmp_path: Path) -> None:
    use_case, stream, _, _ = importer()
    source = export(tmp_path / "w1", every_step("a", 20), [["a", "RTH08", "nurse", ""]])
    write(tmp_path / "w1" / "learners.csv", ["learner_id", "site"], [["a", "RTH08"]])
    with pytest.raises(
        ExportError, match=r"learners.csv: missing column\(s\) sitecode, profession"
    ):
        await use_case.run(source)
    (tmp_path / "w1" / "ibest-9_enrolments.csv").unlink()
    with pytest.raises(ExportError, match=r"no \*_enrolments.csv file"):
        await use_case.run(source)
    assert stream.published == []


async def test_the_latest_report_of_each_run_becomes_metrics(tmp_path: Path) -> None:
    use_case, _, ledger, _ = importer()
    await use_case.run(export(tmp_path / "w1", every_step("a", 20), [["a", "RTH08", "nurse", ""]]))
    await use_case.run(export(tmp_path / "w2", every_step("a", 20), [["a", "RTH08", "nurse", ""]]))
    metrics = FakeCourseMetrics()
    await ImportMetrics(ledger, metrics, 60).refresh()
    [shown] = metrics.shown
    assert shown["events_published"] == 0 and shown["duplicates_skipped"] == 3
    assert shown["unmapped_learners"] == 1 and "'b'" not in str(shown)  # no learner id


def xapi_world() -> tuple[World, XapiStatements, FakeStatementLedger, FakeCourseMetrics]:
    w = world()
    learners, ledger, metrics = FakeLearnerStore(), FakeStatementLedger(), FakeCourseMetrics()
    clinician = clinician_of(KEY, HOME, "L1", Answers("RTH08", "nurse", "PH123456"))
    assert not isinstance(clinician, str)
    learners.learners[learner_key(KEY, HOME, "L1")] = clinician
    statements = XapiStatements(
        w.gateway.authenticate,
        learners,
        ledger,
        w.rejections,
        w.stream,
        metrics,
        catalogue(),
        KEY,
        w.clock,
        w.gateway.limiter.take,
    )
    return w, statements, ledger, metrics


HOME = "https://www.futurelearn.com"
VERSION_103 = "1.0.3"


def xapi(verb: str, activity: str, learner: str = "L1") -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"account": {"homePage": HOME, "name": learner}},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}"},
        "object": {"id": activity},
        "timestamp": "2026-03-02T09:00:00Z",
    }


async def test_statements_not_acknowledged_by_the_stream_are_not_recorded_and_can_be_resent() -> (
    None
):
    w, statements, ledger, metrics = xapi_world()
    _, token = await w.admin.create("course-platform:futurelearn")
    course = catalogue().courses[0]
    batch = [
        xapi("registered", course.activity_iris[0]),
        xapi("experienced", course.activity_iris[0]),
    ]
    body = json.dumps(batch).encode()
    w.stream.down = True
    reply = await statements.post(f"Bearer {token}", VERSION_103, body)
    assert isinstance(reply, XapiRefusal) and reply.why is XapiWhy.STREAM_UNAVAILABLE
    assert ledger.statements == {} and w.rejections.rows == {}
    w.stream.down = False
    reply = await statements.post(f"Bearer {token}", VERSION_103, body)
    assert isinstance(reply, XapiStored) and reply.ids == [s["id"] for s in batch]
    [event] = w.stream.stored.values()
    assert event.data.clinician_ref == clinician_pseudonym(KEY, "PH123456")
    assert metrics.counted == {("futurelearn", "accepted"): 1, ("futurelearn", "ignored"): 1}
    again = await statements.post(f"Bearer {token}", VERSION_103, body)
    assert isinstance(again, XapiStored) and len(w.stream.published) == 1
    assert metrics.counted[("futurelearn", "duplicate")] == 2
