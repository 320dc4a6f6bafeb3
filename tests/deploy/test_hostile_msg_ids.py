"""A trust publishing straight on NATS, as its own user under the generated permissions, sets
`Nats-Msg-Id` as it likes. Whatever it copies or guesses (another trust's event id, that
id scoped by trust, a derived event's id as today's main makes it, even a derived id it
somehow learnt), the platform's publishers (the gateway, enrolment's outbox), each as its
own NATS user, still store every event: the stream's de-duplication suppresses nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from nats.aio.client import Client as NatsClient

from ibest.backbone.publisher import EventPublisher, stream_msg_id
from ibest.backbone.settings import Settings
from ibest.backbone.streams import ensure_streams
from ibest.registry import consumers
from services.enrolment.domain.record import TRAINING_STARTED, derived_event_id
from shared.envelope import new_event, parse_event
from shared.events import TrainingStarted
from tests.deploy.secured_nats import SecuredNats
from tests.gateway.test_ids_per_trust import enrolled, old_started_id
from tests.harness import ID_KEY, publish_raw

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


async def test_a_trust_copying_msg_ids_on_nats_suppresses_nothing(
    secured_nats: SecuredNats, mongodb_url: str
) -> None:
    admin = await secured_nats.connect("admin")
    settings = Settings(MONGODB_URL=mongodb_url, IBEST_DB_PREFIX=f"h{uuid.uuid4().hex[:8]}")
    await ensure_streams(admin.jetstream(), settings, consumers())
    victim_ref = f"c-{uuid.uuid4().hex[:8]}"
    victim = enrolled(victim_ref, "RTH", str(uuid.uuid4()))
    started_id = derived_event_id(ID_KEY, victim_ref, "1", TRAINING_STARTED)
    copied = [
        victim["id"],  # the bare id the victim trust will send
        f"RTH:{victim['id']}",  # scoped by trust, as a sender might guess
        old_started_id(victim_ref),  # today's main's derived id, public inputs
        str(started_id),  # the keyed derived id itself, had it leaked
        stream_msg_id(b"a-guessed-key-0123456789", "RTH", victim["id"]),  # a wrong key
    ]
    hostile = await secured_nats.connect("trust-RKB")
    for msg_id in dict.fromkeys(copied):  # each a valid event of its own trust, stored
        assert await publish_raw(
            hostile.jetstream(), enrolled(f"c-{uuid.uuid4().hex[:8]}", "RKB"), msg_id=msg_id
        )
    await hostile.close()

    gateway = await secured_nats.connect("gateway")
    body = json.dumps(victim).encode()
    stored = await EventPublisher(
        gateway.jetstream(), "gateway", attempts=1, id_key=ID_KEY
    ).publish(parse_event(None, body), body)
    enrolment = await secured_nats.connect("enrolment")
    derived = new_event(
        TrainingStarted(clinician_ref=victim_ref, course_version="1"),
        trustcode="RTH",
        sitecode="RTH01",
        source="/services/enrolment",
        time=T0,
        event_id=started_id,
    )
    derived_stored = await EventPublisher(
        enrolment.jetstream(), "enrolment", attempts=1, id_key=ID_KEY
    ).publish(derived)
    assert (stored, derived_stored) == (True, True)  # today's main: (False, False)
    await _close(gateway, enrolment, admin)


async def _close(*clients: NatsClient) -> None:
    for client in clients:
        await client.close()
