"""The course-platform import use cases: import a run's exports (`CourseImport`) and show
the latest import reports as metrics (`ImportMetrics`); the xAPI use case is beside it, in
`statements.py`. They depend only on `ports.py` and the backbone's `Publisher`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from ibest.backbone.publisher import Publisher, Publishing
from services.gateway.courses.domain.exports import (
    ENROLMENTS,
    LEARNER_ROLE,
    MAPPING,
    OVERFLOW,
    QUESTION_RESPONSE,
    STEP_ACTIVITY,
    ExportError,
    ExportKind,
    RefusedRow,
    header_problem,
    time_cell,
)
from services.gateway.courses.domain.learners import Answers, Clinician, clinician_of, learner_key
from services.gateway.courses.domain.progress import (
    ENROLLED,
    SOURCE,
    Fact,
    LearnerProgress,
    StepMap,
    fact_event,
    fact_event_id,
)
from services.gateway.courses.domain.report import ImportReport, Unmapped
from services.gateway.courses.domain.runs import CourseRun
from services.gateway.courses.ports import (
    CourseMetrics,
    ExportSource,
    ImportLedger,
    LearnerStore,
    LedgerEntry,
)
from shared.envelope import AnyEvent, ContractError

Clock = Callable[[], datetime]
CHUNK = 2000
"""Facts looked up in the ledger, published and recorded together."""


@dataclass
class _Learner:
    enrolled_at: datetime
    line: int
    progress: LearnerProgress = field(default_factory=LearnerProgress)


class CourseImport:
    """`ibest import futurelearn DIR [--dry-run]`: a run's cumulative exports in, only what
    is new out, as many times as the technologist downloads them."""

    def __init__(
        self,
        learners: LearnerStore,
        ledger: ImportLedger,
        stream: Publisher,
        key: bytes,
        clock: Clock,
        chunk: int = CHUNK,
    ) -> None:
        self.learners, self.ledger, self.stream = learners, ledger, stream
        self.key, self.clock, self.chunk = key, clock, chunk

    async def run(self, source: ExportSource, dry_run: bool = False) -> ImportReport:
        """Import (or, dry, count) the exports; ExportError, before anything is published,
        when the configuration or a file's header cannot be used."""
        run = source.run()
        files = self._check_headers(source, run)
        report = ImportReport(run.course_run, run.course_version, self.clock(), dry_run)
        answers = self._answers(source, run, files, report)
        enrolled = self._enrolments(source, files, report)
        self._activity(source, run, files, enrolled, report)
        mapped = self._mapped(run, enrolled, answers, report)
        await self._publish(run, files[ENROLMENTS.name], mapped, report)
        report.finished_at = self.clock()
        if not dry_run:
            await self.ledger.save_report(report.stored())
        return report

    async def map_learners(self, source: ExportSource) -> ImportReport:
        """`--learners-only`: store who each learner is (registration answers or the mapping
        file) for the xAPI route, and publish nothing: for a platform whose progress arrives
        as xAPI statements. Every learner the answers or the file name is mapped."""
        run = source.run()
        files = self._check_headers(source, run, progress=False)
        report = ImportReport(run.course_run, run.course_version, self.clock())
        answers = self._answers(source, run, files, report)
        home = run.account_home_page.rstrip("/")
        mapped = []
        for learner_id, given in answers.items():
            clinician = clinician_of(self.key, home, learner_id, given)
            if isinstance(clinician, str):
                self._unmapped(report, learner_id, given, clinician)
            else:
                mapped.append((learner_key(self.key, home, learner_id), clinician.without_email()))
        for start in range(0, len(mapped), self.chunk):
            await self.learners.save(mapped[start : start + self.chunk])
        report.finished_at = self.clock()
        return report

    def _check_headers(
        self, source: ExportSource, run: CourseRun, progress: bool = True
    ) -> dict[str, str]:
        """Every file the run needs is there with the columns the import reads; else one
        ExportError naming each file and missing column."""
        needed: list[tuple[ExportKind, str | None]] = (
            [(ENROLMENTS, None), (STEP_ACTIVITY, None)] if progress else []
        )
        if run.questions:
            needed.append((QUESTION_RESPONSE, None))
        if run.mapping_file:
            needed.append((MAPPING, run.mapping_file))
        problems, files = [], {}
        for kind, name in needed:
            found = source.header(kind, name)
            if found is None:
                problems.append(f"no {name or '*' + kind.suffix} file in the directory")
                continue
            problem = header_problem(found[0], found[1], kind)
            if problem:
                problems.append(problem)
            files[kind.name] = found[0]
        if problems:
            raise ExportError("; ".join(problems))
        return files

    @staticmethod
    def _rows(
        source: ExportSource,
        kind: ExportKind,
        file: str,
        report: ImportReport,
        name: str | None = None,
    ) -> Iterator[tuple[int, dict[str, str]]]:
        """The file's rows, counted; a row with more cells than the header has columns is
        refused (its cells cannot be told apart: an unquoted comma, say)."""
        for line, row in source.rows(kind, name):
            report.rows_read[kind.name] += 1
            if OVERFLOW in row:
                report.refused.append(
                    RefusedRow(file, line, f"{row[OVERFLOW]} cells, more than the header's columns")
                )
                continue
            yield line, row

    def _answers(
        self, source: ExportSource, run: CourseRun, files: dict[str, str], report: ImportReport
    ) -> dict[str, Answers]:
        """Each learner's registration answers (the latest submission of each question),
        then the mapping file's rows over them."""
        found: dict[str, dict[str, tuple[datetime, str, int]]] = {}
        questions = run.questions
        if questions:
            file = files[QUESTION_RESPONSE.name]
            for line, row in self._rows(source, QUESTION_RESPONSE, file, report):
                asked = questions.get(
                    f"{row['week_number'].strip()}.{row['step_number'].strip()}."
                    f"{row['question_number'].strip()}"
                )
                if asked is None:
                    continue
                try:
                    at = time_cell(row, "submitted_at")
                except ValueError as exc:
                    report.refused.append(RefusedRow(file, line, str(exc)))
                    continue
                if at is None:
                    continue
                mine = found.setdefault(row["learner_id"].strip(), {})
                if asked not in mine or mine[asked][0] <= at:
                    mine[asked] = (at, row["response"], line)
        answers = {
            learner: Answers(
                **{what: value for what, (_, value, _) in given.items()},
                row=(file, (given.get("site") or next(iter(given.values())))[2]),
            )
            for learner, given in found.items()
        }
        if run.mapping_file:
            mapping = files[MAPPING.name]
            for line, row in self._rows(source, MAPPING, mapping, report, run.mapping_file):
                answers[row["learner_id"].strip()] = Answers(
                    row.get("sitecode"),
                    row.get("profession"),
                    row.get("registration_number"),
                    row.get("contact_email"),
                    (mapping, line),
                )
        return answers

    def _enrolments(
        self, source: ExportSource, files: dict[str, str], report: ImportReport
    ) -> dict[str, _Learner]:
        file = files[ENROLMENTS.name]
        enrolled: dict[str, _Learner] = {}
        for line, row in self._rows(source, ENROLMENTS, file, report):
            if (row.get("role") or "").strip().lower() != LEARNER_ROLE:
                report.not_learners += 1
                continue
            learner = (row.get("learner_id") or "").strip()
            try:
                at = time_cell(row, "enrolled_at")
            except ValueError as exc:
                report.refused.append(RefusedRow(file, line, str(exc)))
                continue
            if not learner or at is None:
                report.refused.append(RefusedRow(file, line, "learner_id and enrolled_at needed"))
                continue
            known = enrolled.get(learner)
            if known is None or at < known.enrolled_at:  # the first enrolment is the fact
                enrolled[learner] = _Learner(at, line)
        return enrolled

    def _activity(
        self,
        source: ExportSource,
        run: CourseRun,
        files: dict[str, str],
        enrolled: dict[str, _Learner],
        report: ImportReport,
    ) -> None:
        file = files[STEP_ACTIVITY.name]
        steps = StepMap(run.course)
        strangers: set[str] = set()
        for line, row in self._rows(source, STEP_ACTIVITY, file, report):
            step = row["step"]
            if steps.module_bit(step) is None:
                report.refused.append(
                    RefusedRow(
                        file,
                        line,
                        f"step {step!r} is in no module of course version {run.course_version} "
                        "(the catalogue's step map)",
                    )
                )
                continue
            try:
                visited = time_cell(row, "first_visited_at")
                completed = time_cell(row, "last_completed_at")
            except ValueError as exc:
                report.refused.append(RefusedRow(file, line, str(exc)))
                continue
            learner = enrolled.get(row["learner_id"].strip())
            if learner is None:
                strangers.add(row["learner_id"].strip())
                continue
            steps.add(learner.progress, step, visited, completed)
        report.without_enrolment = len(strangers)

    def _mapped(
        self,
        run: CourseRun,
        enrolled: dict[str, _Learner],
        answers: dict[str, Answers],
        report: ImportReport,
    ) -> list[tuple[str, _Learner, Clinician]]:
        mapped = []
        home = run.account_home_page.rstrip("/")
        for learner_id, learner in enrolled.items():
            clinician = clinician_of(self.key, home, learner_id, answers.get(learner_id, Answers()))
            if isinstance(clinician, str):
                given = answers.get(learner_id)
                if given is None:
                    clinician = "no registration answers and not in the mapping"
                self._unmapped(report, learner_id, given, clinician)
            else:
                mapped.append((learner_key(self.key, home, learner_id), learner, clinician))
        return mapped

    @staticmethod
    def _unmapped(
        report: ImportReport, learner_id: str, given: Answers | None, reason: str
    ) -> None:
        """Count and list the learner as unmapped, and refuse the row their answers came
        from (file and line), so the technologist can find it."""
        report.unmapped.append(Unmapped(learner_id, reason))
        if given is not None and given.row is not None:
            file, line = given.row
            report.refused.append(RefusedRow(file, line, f"unusable mapping: {reason}"))

    def _facts(
        self, run: CourseRun, mapped: list[tuple[str, _Learner, Clinician]]
    ) -> Iterator[tuple[str, _Learner, Clinician, Fact]]:
        steps = StepMap(run.course)
        for key, learner, clinician in mapped:
            yield key, learner, clinician, Fact(ENROLLED, learner.enrolled_at)
            for fact in steps.facts(learner.progress):
                yield key, learner, clinician, fact

    async def _publish(
        self,
        run: CourseRun,
        enrolments_file: str,
        mapped: list[tuple[str, _Learner, Clinician]],
        report: ImportReport,
    ) -> None:
        # Every fact already imported for the version, read once (one pass over the ledger,
        # not a lookup per fact: a weekly re-import of 200,000 facts stays a few seconds).
        imported = await self.ledger.imported(run.course_version)
        if not report.dry_run:
            # The mapping of each learner whose enrolment is new, for the xAPI route (a
            # learner's place is the one their enrolment was published with).
            new = [
                (key, clinician.without_email())
                for key, learner, clinician in mapped
                if str(
                    fact_event_id(
                        self.key, key, run.course_version, Fact(ENROLLED, learner.enrolled_at)
                    )
                )
                not in imported
            ]
            for start in range(0, len(new), self.chunk):
                await self.learners.save(new[start : start + self.chunk])
        batch: list[tuple[str, _Learner, Clinician, Fact]] = []
        for item in self._facts(run, mapped):
            batch.append(item)
            if len(batch) >= self.chunk:
                await self._publish_chunk(run, enrolments_file, batch, imported, report)
                batch = []
        if batch:
            await self._publish_chunk(run, enrolments_file, batch, imported, report)

    async def _publish_chunk(
        self,
        run: CourseRun,
        enrolments_file: str,
        batch: list[tuple[str, _Learner, Clinician, Fact]],
        imported: set[str],
        report: ImportReport,
    ) -> None:
        version = run.course_version
        made = [fact_event_id(self.key, key, version, fact) for key, _, _, fact in batch]
        ids = [str(u) for u in made]
        known = imported.intersection(ids)
        report.duplicates_skipped += len(known)
        source = f"{SOURCE}{run.course_run}"
        fresh: list[tuple[AnyEvent, LedgerEntry]] = []
        for made_id, event_id, (key, learner, clinician, fact) in zip(
            made, ids, batch, strict=True
        ):
            if event_id in known:
                continue
            try:
                event = fact_event(fact, clinician, version, made_id, source)
            except ContractError as exc:
                what = f"{fact.kind} {fact.module_id or ''}".strip()
                report.refused.append(RefusedRow(enrolments_file, learner.line, f"{what}: {exc}"))
                continue
            entry = LedgerEntry(
                event_id,
                run.course_run,
                version,
                key,
                fact.kind,
                fact.module_id,
                fact.time,
                clinician.trustcode,
            )
            fresh.append((event, entry))
        if report.dry_run:
            for _, entry in fresh:
                report.published[(entry.trustcode, entry.kind)] += 1
            return
        events: list[Publishing] = [(event, None) for event, _ in fresh]
        outcomes = await self.stream.publish_many(events)
        stored = []
        for (_, entry), outcome in zip(fresh, outcomes, strict=True):
            if outcome is None:
                report.not_stored += 1
                continue
            stored.append(entry)
            if outcome:
                report.published[(entry.trustcode, entry.kind)] += 1
            else:  # the stream had it (a run stopped between publishing and recording)
                report.duplicates_skipped += 1
        if stored:
            await self.ledger.record(stored, self.clock())


class ImportMetrics:
    """Keeps the gateway's import metrics showing each run's latest report."""

    def __init__(self, ledger: ImportLedger, metrics: CourseMetrics, interval: float) -> None:
        self.ledger, self.metrics, self.interval = ledger, metrics, interval

    async def refresh(self) -> None:
        self.metrics.show_reports(await self.ledger.latest_reports())

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)
