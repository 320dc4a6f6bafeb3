"""Reading the stored event stream in order, for `ibest reporting rebuild`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ibest.backbone.consumer import content_digest
from ibest.backbone.streams import EVENTS_STREAM, EVENTS_SUBJECTS
from shared.envelope import AnyEvent, ContractError, parse_event

REPLAY_BATCH = 500
"""Messages fetched at a time: the replay holds at most this many unapplied."""


async def stored_events(
    js: JetStreamContext, consumes: tuple[str, ...], idle_timeout: float = 30.0
) -> AsyncIterator[AnyEvent]:
    """Every valid consumed event stored up to now, in stream order, as the live consumer
    would apply it: invalid events and an id reused for other content are skipped (the live
    consumer dead-letters them), later copies of an id are passed on (handlers are idempotent).
    """
    end = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    if not end:
        return
    digests: dict[str, str] = {}
    # A pull consumer, fetched a batch at a time, so memory stays bounded however long the
    # stream (a push consumer buffers everything the server sends ahead of the apply loop).
    sub = await js.pull_subscribe(
        EVENTS_SUBJECTS[0], stream=EVENTS_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                              inactive_threshold=idle_timeout))
    try:
        while True:
            try:
                msgs = await sub.fetch(REPLAY_BATCH, timeout=idle_timeout)
            except (NatsTimeout, TimeoutError):
                raise RuntimeError(f"the stream stopped delivering before sequence {end}") \
                    from None
            for msg in msgs:
                event = _valid(msg.subject, msg.data, consumes)
                if event is not None and digests.setdefault(str(event.id),
                                                            content_digest(event)) == \
                        content_digest(event):
                    yield event
                # (nothing pending: the stored end itself was deleted, e.g. by an erasure)
                if msg.metadata.sequence.stream >= end or msg.metadata.num_pending == 0:
                    return
    finally:
        await sub.unsubscribe()


def _valid(subject: str, body: bytes, consumes: tuple[str, ...]) -> AnyEvent | None:
    try:
        event = parse_event(subject, body)
    except ContractError:
        return None
    return event if event.event_type.name in consumes else None
