"""The outcomes service's use cases: apply an assessment, keep a class, publish outcomes.

Publishing uses the backbone outbox: the outcome.recorded events a change causes are stored
in the same write as the patient's new state, then published, then cleared. A crash in
between leaves them in the outbox; the redelivered event or the relay's background pass
publishes them again under the same deterministic id, which JetStream deduplicates.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from ibest.backbone.clock import Clock
from ibest.backbone.concurrency import retry_on_conflict
from ibest.backbone.document import Document
from ibest.backbone.outbox import OutboxRelay
from ibest.backbone.outbox_values import OutboxEntry
from ibest.backbone.publisher import Publisher
from services.outcomes.declaration import DECLARATION
from services.outcomes.domain.assessments import Assessment, utc_text
from services.outcomes.domain.followups import schedule
from services.outcomes.domain.outcomes import Outcome
from services.outcomes.ports import Commit, OutcomesRepository, patient_key
from services.outcomes.settings import OutcomesSettings
from shared.envelope import AnyEvent, new_event
from shared.events import ClassStarted
from shared.followup import Timepoint
from shared.keyed import keyed_event_id

log = logging.getLogger(__name__)
SOURCE = "/services/outcomes"
NAME = DECLARATION.name


def outcome_event_id(
    id_key: bytes, trustcode: str, patient_ref: str, timepoint: Timepoint, revision: int
) -> uuid.UUID:
    """The same revision of the same outcome always has the same id (a re-publish is a
    duplicate), keyed with the platform's id key so no sender can compute it first."""
    return keyed_event_id(
        id_key, "outcome.recorded", trustcode, patient_ref, timepoint.value, str(revision)
    )


def outcome_event(outcome: Outcome, id_key: bytes) -> AnyEvent:
    """outcome.recorded, under the baseline's trust and site, timed at the later assessment."""
    base = outcome.baseline
    return new_event(
        outcome.payload(),
        trustcode=base.trustcode,
        sitecode=base.sitecode,
        source=SOURCE,
        time=outcome.time,
        event_id=outcome_event_id(
            id_key, base.trustcode, base.patient_ref, outcome.timepoint, outcome.revision
        ),
    )


def outbox_entries(changed: list[Outcome], id_key: bytes) -> list[OutboxEntry]:
    """The outcome.recorded events a change causes, as stored in the patient's outbox."""
    return [OutboxEntry.of(outcome_event(o, id_key)) for o in changed]


def class_doc(event: AnyEvent) -> Document:
    data: ClassStarted = event.data
    return {
        "trustcode": event.trustcode,
        "sitecode": event.sitecode,
        "class_id": data.class_id,
        "facilitator_refs": list(data.facilitator_refs),
        "planned_sessions": data.planned_sessions,
        "time": utc_text(event.time),
        "event_id": str(event.id),
    }


def assessment_of(event: AnyEvent) -> Assessment:
    """A `patient.assessed` event as the domain's assessment."""
    return Assessment.from_event(
        str(event.id), event.trustcode, event.sitecode, event.time, event.data
    )


class OutcomesService:
    def __init__(
        self,
        repo: OutcomesRepository,
        publisher: Publisher,
        clock: Clock,
        settings: OutcomesSettings,
        *,
        id_key: bytes,
    ) -> None:
        self.repo = repo
        self.id_key = id_key
        self.relay = OutboxRelay(repo.outbox, publisher, NAME, settings.outbox())
        self._clock = clock
        self._settings = settings

    async def apply_many(self, events: list[AnyEvent]) -> None:
        """Delivered events (one event is a batch of one) with a few bulk round trips,
        ending where applying the events one by one in this order would (same documents,
        same events published).

        Per patient the batch is folded in memory with `PatientState.apply`, then written
        with one compare-and-set each in a single bulk write. If another writer changed a
        patient meanwhile, the batch is read and applied again (every step here is
        idempotent), up to `max_write_attempts`; then `ConcurrentUpdate` goes to the
        consumer, which applies the events one at a time (each a batch of one).
        """
        await retry_on_conflict(lambda: self._apply(events), self._settings.max_write_attempts)

    async def _apply(self, events: list[AnyEvent]) -> None:
        now = self._clock()
        await self.repo.record_classes(
            [class_doc(e) for e in events if e.event_type.name == "class.started"]
        )
        assessments = [assessment_of(e) for e in events if e.event_type.name == "patient.assessed"]
        if not assessments:
            return
        await self.repo.record_assessments(assessments, now)
        loaded = await self.repo.load_many({(a.trustcode, a.patient_ref) for a in assessments})
        pending = {key: p.outbox for key, p in loaded.items()}
        commits: dict[tuple[str, str], Commit] = {}
        for a in assessments:
            key = (a.trustcode, a.patient_ref)
            before = commits.get(key) or Commit(*key, loaded[key].version, 0, loaded[key].state, [])
            state, changed = before.state.apply(a)
            if state is not before.state:
                commits[key] = Commit(
                    *key,
                    before.version,
                    before.changes + 1,
                    state,
                    [*before.outbox, *outbox_entries(changed, self.id_key)],
                )
        await self.repo.commit_many(list(commits.values()))
        for key, commit in commits.items():
            pending[key] = [*pending[key], *commit.outbox]
        await self.relay.publish_many(
            (patient_key(*key), tuple(entries)) for key, entries in pending.items()
        )

    async def sweep_once(self) -> int:
        """Publish whatever crashes left in outboxes (one relay pass)."""
        return await self.relay.relay_once()

    # Read side (HTTP API and CLI)

    async def patient(self, trustcode: str, patient_ref: str) -> dict[str, Any] | None:
        """Winners, outcomes, linked classes and the audit history of one patient."""
        state, version = await self.repo.load(trustcode, patient_ref)
        if version is None:
            return None
        history = await self.repo.history(trustcode, patient_ref)
        # A stored winner does not keep its class_id: the history's copy of it says it.
        kept = {a.event_id: a for a in history}
        won = {tp: kept.get(a.event_id, a) for tp, a in state.winners.items()}
        winners = {a.event_id for a in won.values()}
        class_ids = {a.class_id for a in history if a.class_id}
        baseline = state.winners.get(Timepoint.BASELINE)
        return {
            "trustcode": trustcode,
            "patient_ref": patient_ref,
            "sitecode": baseline.sitecode if baseline else None,
            "assessments": {tp.value: _public(a) for tp, a in won.items()},
            "outcomes": {tp.value: o.to_doc() for tp, o in state.outcomes().items()},
            "classes": {c: None for c in sorted(class_ids)}
            | await self.repo.classes(trustcode, class_ids),
            "history": [
                {**_public(a), "timepoint": a.timepoint.value, "winner": a.event_id in winners}
                for a in history
            ],
        }

    async def followups(self, trustcode: str, patient_ref: str) -> dict[str, Any] | None:
        state, version = await self.repo.load(trustcode, patient_ref)
        if version is None:
            return None
        return {
            "trustcode": trustcode,
            "patient_ref": patient_ref,
            **schedule(state, self._clock()),
        }


def _public(a: Assessment) -> dict[str, Any]:
    doc = a.to_doc()
    return {k: doc[k] for k in ("event_id", "time", "sitecode", "class_id", "measures")}
