"""Every enrolment use case on in-memory fakes (no servers): fast proof of the rules; the
real-server tests prove the adapters keep them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ibest.backbone.concurrency import ConcurrentUpdate
from ibest.backbone.outbox import OutboxRelay
from ibest.backbone.outbox_values import OutboxSettings
from services.enrolment.application import EnrolmentService
from services.enrolment.domain.clinician import Status
from services.enrolment.domain.record import (
    TRAINING_COMPLETED,
    TRAINING_STARTED,
    Emitted,
    derived_event_id,
)
from services.enrolment.ports import Stored
from shared.envelope import AnyEvent, ContractError
from tests.enrolment.test_batch import CATALOGUE, MODULES, T0, enrolled, module
from tests.fakes.enrolment import FakeClinicianRepository
from tests.fakes.publisher import FakePublisher
from tests.harness import ID_KEY


def make() -> tuple[EnrolmentService, FakeClinicianRepository, FakePublisher]:
    repository, publisher = FakeClinicianRepository(), FakePublisher()
    relay = OutboxRelay(
        repository.outbox, publisher, "enrolment", OutboxSettings(interval=0.01, limit=500)
    )
    return EnrolmentService(repository, relay, CATALOGUE, id_key=ID_KEY), repository, publisher


def training(ref: str) -> list[AnyEvent]:
    return [
        enrolled(ref, 0, contact_email=f"{ref}@example.nhs.uk"),
        *(module(ref, "completed", m, 10 + i) for i, m in enumerate(MODULES)),
    ]


async def test_record_derives_started_and_completed_once_with_fixed_ids() -> None:
    service, repository, publisher = make()
    for event in training("c-1") * 2:  # every event redelivered once
        await service.apply_many([event])
    assert [str(e.id) for e in publisher.published] == [
        str(derived_event_id(ID_KEY, "c-1", "1", TRAINING_STARTED)),
        str(derived_event_id(ID_KEY, "c-1", "1", TRAINING_COMPLETED)),
    ]
    state = await service.clinician("c-1")
    assert state is not None and state.status == Status.COMPLETED
    assert await repository.outbox.pending(10) == []


async def test_a_publish_failure_keeps_the_entry_until_redelivery_or_the_relay() -> None:
    service, repository, publisher = make()
    *before, last = training("c-2")
    for event in before:
        await service.apply_many([event])
    publisher.failures = 1
    with pytest.raises(ConnectionError):
        await service.apply_many([last])
    [(key, [entry])] = [(k, list(e)) for k, e in await repository.outbox.pending(10)]
    assert key == "c-2" and entry.name == TRAINING_COMPLETED
    assert await service.republish_pending() == 1
    assert str(publisher.published[-1].id) == entry.id
    await service.apply_many([last])  # the redelivery: nothing left to publish, nothing new
    assert [str(e.id) for e in publisher.published].count(entry.id) == 1


async def test_a_domain_rule_breach_stores_nothing() -> None:
    service, repository, _ = make()
    await service.apply_many([enrolled("c-3", 0)])
    with pytest.raises(ContractError, match=r"data\.module_id"):
        await service.apply_many([module("c-3", "started", "m99-nope", 1)])
    stored = (await repository.load_many(["c-3"])).get("c-3")
    assert stored is not None and len(stored.record.facts) == 1


async def test_lost_races_are_retried_then_left_to_redelivery() -> None:
    service, repository, _ = make()
    repository.conflicts = 3
    await service.apply_many([enrolled("c-4", 0)])
    assert await service.clinician("c-4") is not None
    repository.conflicts = 1000
    with pytest.raises(ConcurrentUpdate):
        await service.apply_many([module("c-4", "started", MODULES[0], 1)])


async def test_a_batch_ends_where_one_by_one_does() -> None:
    one, one_repo, one_published = make()
    many, many_repo, many_published = make()
    events = [*training("c-5"), enrolled("c-6", 3), *training("c-5")[:2]]
    for event in events:
        await one.apply_many([event])
    await many.apply_many(events)
    assert many_published.sent() == one_published.sent()
    for ref in ("c-5", "c-6"):
        assert await many.clinician(ref) == await one.clinician(ref)
        mine, theirs = (
            (await many_repo.load_many([ref])).get(ref),
            (await one_repo.load_many([ref])).get(ref),
        )
        assert mine is not None and theirs is not None
        assert mine.record == theirs.record  # `rev` counts writes, so it differs by design


async def test_a_batch_with_a_breach_raises_before_any_write() -> None:
    service, repository, publisher = make()
    with pytest.raises(ContractError):
        await service.apply_many([enrolled("c-7", 0), module("c-7", "started", "m0", 1)])
    assert repository.records == {} and publisher.published == []


async def test_contact_erase_and_rename() -> None:
    service, _, _ = make()
    first = enrolled("c-8", 0, contact_email="c-8@example.nhs.uk")
    await service.apply_many([first])
    assert await service.contact("c-8") == (True, "c-8@example.nhs.uk")
    assert await service.contact("nobody") == (False, None)
    await service.rename_fact("c-8", "RTH", str(first.id), "redacted-id")
    erased = await service.erase("c-8", record=False)
    assert erased.found and erased.email_removed and not erased.record_removed
    assert await service.contact("c-8") == (True, None)
    gone = await service.erase("c-8", record=True)
    assert gone.record_removed and await service.clinician("c-8") is None
    assert not (await service.erase("c-8", record=True)).found


async def test_retention_erases_emails_past_their_period_and_never_a_newer_record() -> None:
    """Contact-email retention (domain/retention.py): judged on the latest event; a record
    written between the read and the erasure is left for the next pass."""
    service, repository, _ = make()
    retention = timedelta(days=450)
    await service.apply_many([enrolled("c-old", 0, contact_email="old@example.nhs.uk")])
    await service.apply_many([enrolled("c-busy", 0, contact_email="busy@example.nhs.uk")])
    await service.apply_many([module("c-busy", "started", MODULES[0], 60 * 24 * 100)])
    now = T0 + retention + timedelta(minutes=1)
    # A concurrent write to c-old lands between the read and the erasure: not overwritten.
    held = await repository.held_contacts()
    await service.rename_fact("c-old", "RTH", "unused-id", "unused-id")  # bumps the revision
    assert await repository.erase_contacts([h for h in held if h.clinician_ref == "c-old"]) == 0
    assert await service.contact("c-old") == (True, "old@example.nhs.uk")
    assert await service.erase_expired_contacts(now, retention) == 1
    assert await service.contact("c-old") == (True, None)
    assert await service.contact("c-busy") == (True, "busy@example.nhs.uk")  # active since
    assert await service.erased_contacts() == {"c-old"}
    assert await service.erase_expired_contacts(now, retention) == 0  # idempotent


async def test_rederive_gives_records_from_before_revisions_one_revision_saying_the_facts() -> None:
    """After the upgrade, a record remembers only which events it emitted (its start was
    derived from a late module, say), not what they said: `rederive` publishes each once
    more, as revision 2 with the content the facts give now; a second run publishes
    nothing."""
    service, repository, publisher = make()
    for event in training("c-9"):
        await service.apply_many([event])
    stored = repository.records["c-9"]
    legacy = {key: Emitted(revision=1) for key in stored.record.emitted}  # content unknown
    repository.records["c-9"] = Stored(stored.record.model_copy(update={"emitted": legacy}), 9)
    publisher.clear()
    assert await service.rederive() == 1
    revised = {e.event_type.name: e for e in publisher.published}
    assert set(revised) == {TRAINING_STARTED, TRAINING_COMPLETED}
    assert all(e.data.revision == 2 for e in revised.values())
    assert revised[TRAINING_STARTED].id == derived_event_id(ID_KEY, "c-9", "1", TRAINING_STARTED, 2)
    assert revised[TRAINING_STARTED].time == T0 + timedelta(minutes=10)
    assert await service.rederive() == 0
    assert len(publisher.published) == 2
