"""Enrolment's repository port, held to one contract: every assertion here runs against the
in-memory fake (tests/fakes/enrolment.py) and against the MongoDB adapter on the real
database, so the fake-based use-case tests (test_application.py) prove what the service
does (the pattern of tests/reporting/test_store.py): compare-and-set revisions, batches,
the contact email and its erasure, a fact renamed to its redacted copy's id, the outbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.outbox_values import OutboxEntry
from services.enrolment.adapters.repository import MongoClinicianRepository
from services.enrolment.domain.record import apply_event
from services.enrolment.ports import Change, ClinicianRepository, Stored
from shared.catalogue import catalogue
from shared.envelope import parse_event
from tests.fakes.enrolment import FakeClinicianRepository
from tests.harness import ID_KEY, cloud_event, scratch_database


@pytest.fixture(params=["fake", "mongo"])
async def repo(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeClinicianRepository()
        return
    async with scratch_database(mongodb_url, "enrolment") as db:
        real = MongoClinicianRepository(db)
        await real.create_indexes()
        yield real


async def load(repo: ClinicianRepository, ref: str) -> Stored | None:
    return (await repo.load_many([ref])).get(ref)


def enrolled(ref: str, rev: int | None) -> Change:
    """The change one `clinician.enrolled` (with a contact email) makes to a new record."""
    raw = cloud_event(
        "clinician.enrolled",
        {
            "clinician_ref": ref,
            "profession": "nurse",
            "course_version": "1",
            "contact_email": f"{ref}@example.nhs.uk",
        },
    )
    applied = apply_event(
        None, parse_event(None, json.dumps(raw).encode()), catalogue(), id_key=ID_KEY
    )
    return Change(applied.record, applied.state, rev)


async def test_a_record_is_written_only_at_the_revision_it_was_read(
    repo: ClinicianRepository,
) -> None:
    assert await load(repo, "c1") is None and await repo.record("c1") is None
    first = enrolled("c1", None)
    await repo.save_many([first])
    stored = await load(repo, "c1")
    assert stored is not None and stored.rev == 1
    assert stored.record.facts == first.record.facts
    assert await repo.record("c1") == stored.record
    with pytest.raises(ConcurrentUpdate):
        await repo.save_many([enrolled("c1", None)])  # created meanwhile
    with pytest.raises(ConcurrentUpdate):
        await repo.save_many([enrolled("c1", 0)])  # read at a revision since passed
    await repo.save_many([enrolled("c1", 1)])
    assert (await load(repo, "c1")).rev == 2  # type: ignore[union-attr]


async def test_a_batch_is_loaded_and_saved_together_and_a_lost_race_is_raised(
    repo: ClinicianRepository,
) -> None:
    await repo.save_many([enrolled("c1", None), enrolled("c2", None)])
    found = await repo.load_many(["c1", "c2", "c9"])
    assert sorted(found) == ["c1", "c2"] and {s.rev for s in found.values()} == {1}
    with pytest.raises(ConcurrentUpdate):
        await repo.save_many([enrolled("c1", 1), enrolled("c2", 0)])
    assert (await load(repo, "c1")).rev == 2  # type: ignore[union-attr]  # the winner is kept


async def test_the_contact_email_is_given_then_erased_and_the_record_removed(
    repo: ClinicianRepository,
) -> None:
    assert await repo.contact("c9") == (False, None)
    await repo.save_many([enrolled("c1", None)])
    assert await repo.contact("c1") == (True, "c1@example.nhs.uk")
    erasure = await repo.erase("c1", record=False)
    assert (erasure.found, erasure.email_removed, erasure.record_removed) == (True, True, False)
    assert await repo.contact("c1") == (True, None)
    assert await repo.erased_contacts() == {"c1"}
    removed = await repo.erase("c1", record=True)
    assert (removed.found, removed.record_removed) == (True, True)
    assert await load(repo, "c1") is None
    assert (await repo.erase("c9", record=False)).found is False


async def test_held_contacts_are_erased_only_at_the_revision_they_were_read(
    repo: ClinicianRepository,
) -> None:
    await repo.save_many([enrolled("c1", None)])
    await repo.save_many([enrolled("c2", None)])
    held = {h.clinician_ref: h for h in await repo.held_contacts()}
    assert sorted(held) == ["c1", "c2"] and all(h.event_times for h in held.values())
    await repo.save_many([enrolled("c2", 1)])  # c2 changed after it was read
    assert await repo.erase_contacts(list(held.values())) == 1
    assert await repo.contact("c1") == (True, None)
    assert await repo.contact("c2") == (True, "c2@example.nhs.uk")


async def test_a_stored_fact_is_renamed_within_its_trust_and_the_revision_moves(
    repo: ClinicianRepository,
) -> None:
    await repo.save_many([enrolled("c1", None)])
    stored = await load(repo, "c1")
    assert stored is not None and len(stored.record.facts) == 1
    fact = stored.record.facts[0]
    await repo.rename_fact("c1", "XXX", fact.id, "other-trusts")  # ids belong to their trust
    unchanged = await load(repo, "c1")
    assert unchanged is not None and [f.id for f in unchanged.record.facts] == [fact.id]
    await repo.rename_fact("c1", fact.trustcode, fact.id, "redacted-id")
    renamed = await load(repo, "c1")
    assert renamed is not None and [f.id for f in renamed.record.facts] == ["redacted-id"]
    assert renamed.rev == unchanged.rev + 1
    assert renamed.record.facts[0] == fact.model_copy(update={"id": "redacted-id"})


async def test_derived_events_wait_in_the_records_outbox_until_cleared(
    repo: ClinicianRepository,
) -> None:
    change = enrolled("c1", None)
    entries = tuple(OutboxEntry(id=i, name="clinician.enrolled", body="{}") for i in ("o1", "o2"))
    await repo.save_many(
        [Change(change.record.model_copy(update={"outbox": entries}), change.state, None)]
    )
    stored = await load(repo, "c1")
    assert stored is not None and stored.record.outbox == entries and stored.rev == 1
    assert [(key, [e.id for e in held]) for key, held in await repo.outbox.pending(10)] == [
        ("c1", ["o1", "o2"])
    ]
    await repo.outbox.clear("c1", ["o1"])
    assert [e.id for e in await repo.outbox.entries("c1")] == ["o2"]
    cleared = await load(repo, "c1")
    # (Cleared: the fake removes it at once; the Mongo store remembers it published and the
    # record's next write drops it, so no write moves the revision: ibest/backbone/outbox.py.)
    assert cleared is not None and [e.id for e in cleared.record.outbox] == ["o2"]
    await repo.outbox.clear_many({"c1": ["o2"]})
    assert await repo.outbox.entries("c1") == [] and await repo.outbox.pending(10) == []
