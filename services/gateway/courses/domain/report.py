"""What an import did: kept with the import ledger, printed at the end, shown as metrics.

The stored report holds counts, reasons and line numbers, never a learner id (the export's
ids never enter the platform); the printed one also lists the unmapped learners' ids, for
the learning technologist to fix the registration answers or the mapping file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.gateway.courses.domain.exports import RefusedRow

STORED_REFUSALS = 1000
"""Refused rows kept in the stored report (all are counted and printed)."""


@dataclass(frozen=True)
class Unmapped:
    learner_id: str
    reason: str


@dataclass
class ImportReport:
    course_run: str
    course_version: str
    started_at: datetime
    dry_run: bool = False
    finished_at: datetime | None = None
    rows_read: Counter[str] = field(default_factory=Counter)
    """Data rows read, by export kind."""
    published: Counter[tuple[str, str]] = field(default_factory=Counter)
    """New events, by (trust, event type): published, or in a dry run, to be published."""
    duplicates_skipped: int = 0
    """Facts already imported (the ledger has them): nothing published."""
    not_stored: int = 0
    """New facts the event stream did not acknowledge: run the import again."""
    not_learners: int = 0
    """Enrolments of other roles (educators, admins): not clinicians in training."""
    without_enrolment: int = 0
    """Learners with step activity but no learner enrolment row: not imported."""
    refused: list[RefusedRow] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(self.published.values())

    def per_trust(self) -> dict[str, dict[str, int]]:
        trusts: dict[str, dict[str, int]] = {}
        for (trust, kind), count in sorted(self.published.items()):
            trusts.setdefault(trust, {})[kind] = count
        return trusts

    def stored(self) -> dict[str, Any]:
        """The document kept with the ledger (no learner id)."""
        return {
            "course_run": self.course_run,
            "course_version": self.course_version,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "rows_read": dict(self.rows_read),
            "published": self.per_trust(),
            "events_published": self.events,
            "duplicates_skipped": self.duplicates_skipped,
            "not_stored": self.not_stored,
            "not_learners": self.not_learners,
            "without_enrolment": self.without_enrolment,
            "refused_rows": len(self.refused),
            "refused": [
                {"file": r.file, "line": r.line, "reason": r.reason}
                for r in self.refused[:STORED_REFUSALS]
            ],
            "unmapped_learners": len(self.unmapped),
            "unmapped_reasons": dict(Counter(u.reason.split(" (")[0] for u in self.unmapped)),
        }

    def lines(self) -> list[str]:
        """The summary a person reads at the end of a run (or a dry run)."""
        verb = "would publish" if self.dry_run else "published"
        out = [
            f"course run {self.course_run} (course version {self.course_version})"
            + (" - DRY RUN, nothing published" if self.dry_run else ""),
            "rows read: " + ", ".join(f"{kind} {n}" for kind, n in sorted(self.rows_read.items())),
            f"events {verb}: {self.events}; already imported (skipped): "
            f"{self.duplicates_skipped}; refused rows: {len(self.refused)}; unmapped learners: "
            f"{len(self.unmapped)}; other roles: {self.not_learners}"
            + (
                f"; step activity of people with no learner enrolment (staff, say): "
                f"{self.without_enrolment}"
                if self.without_enrolment
                else ""
            ),
        ]
        if self.not_stored:
            out.append(
                f"NOT STORED: {self.not_stored} events (the event stream did not acknowledge "
                "them): run the import again"
            )
        for trust, kinds in self.per_trust().items():
            out.append(
                f"  {trust}: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
            )
        if self.unmapped:
            out.append("unmapped learners (imported on a later run once mapped):")
            out.extend(f"  {u.learner_id}: {u.reason}" for u in self.unmapped)
        if self.refused:
            out.append("refused rows (skipped; the rest was imported):")
            out.extend(f"  {r}" for r in self.refused)
        return out
