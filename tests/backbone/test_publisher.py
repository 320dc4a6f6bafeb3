"""The backbone publisher's `publish_many` on a real nats-server: every event awaited for its
own acknowledgement, a duplicate told apart, and an event the stream did not store
reported as such (never as stored)."""

from __future__ import annotations

import uuid

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ibest.backbone.publisher import EventPublisher, Publishing, stream_msg_id
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM
from shared.envelope import BY_NAME
from shared.examples import example
from tests.harness import ID_KEY, stream_events


def fresh(n: int) -> list[Publishing]:
    event = example(BY_NAME["module.started"])
    return [(event.model_copy(update={"id": uuid.uuid4()}), None) for _ in range(n)]


async def test_publish_many_stores_each_event_once_and_tells_duplicates(
    js: JetStreamContext, settings: Settings
) -> None:
    publisher = EventPublisher(js, "publisher-test", attempts=1, timeout=5, id_key=ID_KEY)
    first = fresh(3)
    assert await publisher.publish_many(first) == [True, True, True]
    again = [*first[1:], *fresh(2)]  # two stored before, two new
    body = again[-1][0].to_json()
    again[-1] = (again[-1][0], body)  # the exact bytes, as the gateway sends them
    assert await publisher.publish_many(again) == [False, False, True, True]
    stored = await stream_events(js, "module.started")
    assert sorted(e["_msg_id"] for e in stored) == sorted(
        stream_msg_id(ID_KEY, event.trustcode, str(event.id)) for event, _ in [*first, *again[2:]]
    )


async def test_publish_many_reports_none_for_what_no_stream_stored(
    js: JetStreamContext, settings: Settings
) -> None:
    await js.delete_stream(EVENTS_STREAM)
    publisher = EventPublisher(js, "publisher-test", attempts=2, timeout=0.5, id_key=ID_KEY)
    assert await publisher.publish_many(fresh(4)) == [None, None, None, None]
    try:
        await js.stream_info(EVENTS_STREAM)
    except NotFoundError:
        pass
    else:
        raise AssertionError("nothing should have created the events stream")
