"""The enrolment use cases: record clinicians' events (a batch; one event is a batch of
one), publish the derived events they imply through the backbone outbox, read and erase a
clinician, and erase contact emails past their retention.

Recording is read -> fold (domain) -> compare-and-set save, retried on a lost race. The
derived events enter the record's outbox in the same write, so a crash between storing and
publishing is repaired by the redelivery or the relay's background pass.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from ibest.backbone.concurrency import retry_on_conflict
from ibest.backbone.outbox import OutboxRelay
from ibest.backbone.outbox_values import OutboxEntry
from services.enrolment.domain.clinician import ClinicianState, fold
from services.enrolment.domain.record import Applied, ClinicianRecord, apply_event, derive
from services.enrolment.domain.retention import contact_expired
from services.enrolment.ports import Change, ClinicianRepository, Erasure
from shared.catalogue import Catalogue
from shared.envelope import AnyEvent

WRITE_ATTEMPTS = 20


class EnrolmentService:
    def __init__(
        self,
        repository: ClinicianRepository,
        relay: OutboxRelay,
        catalogue: Catalogue,
        write_attempts: int = WRITE_ATTEMPTS,
        *,
        id_key: bytes,
    ) -> None:
        self.repository = repository
        self.relay = relay
        self.catalogue = catalogue
        self.id_key = id_key
        self._attempts = write_attempts

    async def apply_many(self, events: list[AnyEvent]) -> None:
        """Record delivered events (one event is a batch of one) and publish the derived
        events they imply: one read and one bulk write for all of them, then every touched
        outbox published and cleared in one more write.

        The events are applied in memory in batch order per clinician (exactly what applying
        them one by one does; no rule here rejects an event, the contract already judged it).
        A lost race (another writer moved a clinician on) is read and applied again, up to
        `write_attempts`; every step is idempotent: what is already stored is skipped and
        what the outbox holds is published. If it still fails, or anything else raises (a
        publish failure), the backbone applies each event again alone, as a batch of one.
        """
        await retry_on_conflict(lambda: self._apply(events), self._attempts)

    async def _apply(self, events: list[AnyEvent]) -> None:
        by_ref: dict[str, list[AnyEvent]] = {}
        for event in events:
            by_ref.setdefault(event.data.clinician_ref, []).append(event)
        stored = await self.repository.load_many(list(by_ref))
        changes: list[Change] = []
        outboxes: list[tuple[str, tuple[OutboxEntry, ...]]] = []
        for ref, mine in by_ref.items():
            before = stored.get(ref)
            record: ClinicianRecord | None = before.record if before else None
            last: Applied | None = None
            for event in mine:
                applied = apply_event(record, event, self.catalogue, id_key=self.id_key)
                record = applied.record
                if applied.changed:
                    last = applied
            assert record is not None
            if last is not None:
                # `last` is the final record: later events of the batch changed nothing.
                changes.append(Change(last.record, last.state, before.rev if before else None))
            outboxes.append((ref, record.outbox))
        await self.repository.save_many(changes)
        await self.relay.publish_many(outboxes)

    async def rederive(self) -> int:
        """Derive every clinician's training events again from their facts and publish what
        differs from the last revision emitted (`domain.record.derive`); how many
        clinicians had something to publish. Run once after upgrading to revisions
        (`ibest enrolment rederive`): records from before it remember only which events
        were emitted, not what they said, so each gets one revision saying what the facts
        say now; then every consumer holds the start and completion by event time, in any
        order. Idempotent: a second run publishes nothing."""
        changed = 0
        for ref in await self.repository.clinician_refs():

            async def attempt(ref: str = ref) -> tuple[OutboxEntry, ...] | None:
                stored = (await self.repository.load_many([ref])).get(ref)
                if stored is None:
                    return None
                applied = derive(stored.record, self.catalogue, id_key=self.id_key)
                if applied.changed:
                    await self.repository.save_many(
                        [Change(applied.record, applied.state, stored.rev)]
                    )
                return applied.record.outbox if applied.changed else None

            outbox = await retry_on_conflict(attempt, self._attempts)
            if outbox is not None:
                changed += 1
                await self.relay.publish(ref, outbox)
        return changed

    async def republish_pending(self) -> int:
        """Publish what crashes left in outboxes (one relay pass); how many events."""
        return await self.relay.relay_once()

    async def clinician(self, clinician_ref: str) -> ClinicianState | None:
        """The clinician's state, folded from their facts (the record keeps only a summary)."""
        record = await self.repository.record(clinician_ref)
        return fold(clinician_ref, record.facts, self.catalogue) if record else None

    async def contact(self, clinician_ref: str) -> tuple[bool, str | None]:
        """Whether the clinician is known, and their contact email if they have one."""
        return await self.repository.contact(clinician_ref)

    async def erase(self, clinician_ref: str, *, record: bool) -> Erasure:
        """Remove the contact email and, with `record`, the whole record and its event ids;
        the erasure says the clinician's state just before."""
        state = await self.clinician(clinician_ref)
        return replace(await self.repository.erase(clinician_ref, record=record), state=state)

    async def erase_expired_contacts(self, now: datetime, retention: timedelta) -> int:
        """Retention: erase every contact email past `retention` since its clinician's latest
        accepted event (domain/retention.py), as `erase` does; how many. Each erasure is
        guarded by the revision read, so a record stored meanwhile (new activity, perhaps a
        new email) is left for the next pass to judge again."""
        expired = [
            held
            for held in await self.repository.held_contacts()
            if contact_expired(held.event_times, now, retention)
        ]
        return await self.repository.erase_contacts(expired) if expired else 0

    async def erased_contacts(self) -> set[str]:
        """The clinicians whose contact email has been erased (to redact the streams)."""
        return await self.repository.erased_contacts()

    async def rename_fact(
        self, clinician_ref: str, trustcode: str, old_id: str, new_id: str
    ) -> None:
        """Point a stored fact (of `trustcode`'s event `old_id`) at its redacted copy's id."""
        await self.repository.rename_fact(clinician_ref, trustcode, old_id, new_id)
