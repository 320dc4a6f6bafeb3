"""How a stamped outbox stores a derived event's body (issue 26): compressed against a
preset dictionary taken from the contract, each dictionary version frozen once written,
and every shape an entry was ever stored in read back to the very body that was queued."""

from __future__ import annotations

import hashlib
import uuid
import zlib
from datetime import UTC, datetime

import bson
import pytest

from ibest import registry
from ibest.backbone.outbox_codec import (
    DICTIONARY,
    dictionary,
    read_entries,
    stored_entries,
)
from ibest.backbone.outbox_values import OutboxEntry
from ibest.outbox_dictionary import main, source_of
from services.enrolment.domain.record import SOURCE as ENROLMENT_SOURCE
from services.notifications.scheduler import SOURCE as NOTIFICATIONS_SOURCE
from services.outcomes.application import SOURCE as OUTCOMES_SOURCE
from services.outcomes.application import outcome_event
from services.outcomes.domain.assessments import Assessment
from services.outcomes.domain.outcomes import PatientState
from shared import events as ev
from shared.envelope import BY_NAME, new_event
from shared.examples import example
from shared.followup import Timepoint
from tests.harness import ID_KEY

PINNED = {1: "63a1cb630d836040c993e4eaef6561a5ab334902396f9474571e7245443dfe93"}
"""The SHA-256 of every dictionary version: entries compressed against one are stored, so
none may ever change (a new version is a new file)."""


def outcome_recorded() -> OutboxEntry:
    """An outcome.recorded as the outcomes service derives it from two assessments."""
    baseline, month_3 = (
        ev.PatientAssessed(
            patient_ref="p-9d2bcae930c09e5c4716",
            class_id="class-1",
            timepoint=tp,
            measures=ev.Measures(rmdq=rmdq, pain_nrs=6, psfs=5.0),
        )
        for tp, rmdq in ((Timepoint.BASELINE, 14), (Timepoint.MONTH_3, 8))
    )
    state, _ = PatientState().apply(
        Assessment.from_event(
            str(uuid.uuid4()), "RYJ", "RYJ01", datetime(2026, 5, 25, 10, 29, tzinfo=UTC), baseline
        )
    )
    _, [outcome] = state.apply(
        Assessment.from_event(
            str(uuid.uuid4()), "RYJ", "RYJ01", datetime(2026, 8, 27, 14, 42, tzinfo=UTC), month_3
        )
    )
    return OutboxEntry.of(outcome_event(outcome, ID_KEY))


def training(name: str) -> OutboxEntry:
    """A training event as enrolment derives it (its source, keyed id and data)."""
    event = example(BY_NAME[name])
    return OutboxEntry.of(
        new_event(
            event.data,
            trustcode="RKB",
            sitecode="RKB02",
            source=ENROLMENT_SOURCE,
            time=datetime(2026, 2, 23, 7, 26, 3, 905914, tzinfo=UTC),
            event_id=uuid.uuid4(),
        )
    )


@pytest.mark.parametrize(
    "made",
    [
        outcome_recorded(),
        training("clinician.training_started"),
        training("clinician.training_completed"),
    ],
    ids=lambda e: e.name,
)
def test_a_derived_event_is_stored_in_under_a_third_and_read_back_exactly(
    made: OutboxEntry,
) -> None:
    [stored] = stored_entries([made])
    assert set(stored) == {"id", f"z{DICTIONARY}"} and stored["id"] == made.id
    assert len(stored[f"z{DICTIONARY}"]) * 3 < len(made.body)
    zlib_only = {"id": made.id, "name": made.name, "z": zlib.compress(made.body.encode())}
    # every shape ever stored reads back to the very entry queued
    assert read_entries([stored, zlib_only, made.model_dump()]) == (made, made, made)
    # what the dictionary buys, in BSON as stored: under half the zlib-only entry
    assert len(bson.encode(stored)) * 2 < len(bson.encode(zlib_only))


def test_an_entry_whose_body_would_not_come_back_exactly_keeps_the_zlib_shape() -> None:
    made = outcome_recorded()
    unnamed = made.model_copy(update={"name": ""})  # stored before names were recorded
    other_id = made.model_copy(update={"id": str(uuid.uuid4())})  # not the body's own id
    for odd in (unnamed, other_id):
        [stored] = stored_entries([odd])
        assert set(stored) == {"id", "name", "z"}
        assert read_entries([stored]) == (odd,)


def test_each_dictionary_is_frozen_and_the_newest_follows_the_contract() -> None:
    for version, digest in PINNED.items():
        assert hashlib.sha256(dictionary(version)).hexdigest() == digest, (
            f"outbox dictionary {version} changed: stored entries need it as it was; "
            "restore it and write a new version (python -m ibest.outbox_dictionary N)"
        )
    assert max(PINNED) == DICTIONARY
    text = dictionary(DICTIONARY).decode()
    sources = {ENROLMENT_SOURCE, OUTCOMES_SOURCE, NOTIFICATIONS_SOURCE}
    assert sources == {source_of(s.name) for s in registry.SERVICES if s.publishes}
    for name in registry.derived_events():
        etype = BY_NAME[name]
        assert f'"type":"{etype.ce_type}"' in text
        missing = {f for f in etype.payload.model_fields if f'"{f}":' not in text}
        assert not missing, f"{name}'s {missing}: write a new dictionary version"


def test_a_written_dictionary_is_never_overwritten(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DICTIONARY)]) == 1
    assert "never rewritten" in capsys.readouterr().err
