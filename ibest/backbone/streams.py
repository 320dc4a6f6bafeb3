"""The two streams and every durable consumer, declared here and only here.

`ibest streams apply` (the operator, as NATS `admin`) owns them; services bind to the
consumer declared for them and their NATS users cannot create, re-create or redirect one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from ibest.backbone.settings import Settings
from shared.envelope import BY_NAME, MAX_EVENT_BYTES

EVENTS_STREAM = "IBEST_EVENTS"
EVENTS_SUBJECTS = ["ibest.v1.>"]
DEADLETTER_STREAM = "IBEST_DEADLETTER"
DEADLETTER_PREFIX = "ibest.deadletter"
# Dead letters carry the original event plus our headers, so allow some room above it.
DEADLETTER_MAX_BYTES = MAX_EVENT_BYTES + 16 * 1024
GATEWAY_CONSUMER = "gateway"
"""The gateway's durable pull consumer on the dead-letter stream (docs: deploy/README.md)."""


def stream_configs(settings: Settings) -> list[StreamConfig]:
    """Events: every event kept (rebuilds replay it), deduplicated on Nats-Msg-Id.

    Each subject (one trust, one event type) holds at most `events_per_subject` messages and
    a publish beyond that is refused, not an old event dropped (`discard_new_per_subject`):
    a trust's share of the store is bounded, so one trust filling it cannot stop another's.
    """
    return [
        StreamConfig(
            name=EVENTS_STREAM,
            description="Every iBeST contract event, kept as the record rebuilds replay.",
            subjects=EVENTS_SUBJECTS,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.NEW,
            discard_new_per_subject=True,
            max_msgs_per_subject=settings.events_per_subject,
            max_msgs=-1,
            max_bytes=-1,
            max_age=0,
            max_msg_size=MAX_EVENT_BYTES,
            storage=StorageType.FILE,
            num_replicas=settings.stream_replicas,
            duplicate_window=settings.duplicate_window,
            deny_delete=False,
            deny_purge=True,
        ),
        StreamConfig(
            name=DEADLETTER_STREAM,
            description="Events a consumer could not apply, with the reason; replayable.",
            subjects=[f"{DEADLETTER_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.NEW,
            max_msg_size=DEADLETTER_MAX_BYTES,
            # Retention: a dead letter holds an event as sent (possibly personal data).
            max_age=settings.deadletter_max_age_days * 86400,
            storage=StorageType.FILE,
            num_replicas=settings.stream_replicas,
            # JetStream refuses a duplicate window longer than the stream's max_age.
            duplicate_window=min(
                settings.duplicate_window, settings.deadletter_max_age_days * 86400
            ),
        ),
    ]


def filter_subjects(consumes: Sequence[str]) -> list[str]:
    """Server-side filters of a consumer: one per event name, any trust."""
    unknown = [n for n in consumes if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown event names: {unknown}")
    return [f"ibest.v1.*.{name}" for name in consumes]


def consumer_config(name: str, consumes: Sequence[str], settings: Settings) -> ConsumerConfig:
    """A service's durable pull consumer on the events stream."""
    return ConsumerConfig(
        durable_name=name,
        description=f"{name} service",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait,
        max_deliver=-1,  # the consumer policy bounds retries and dead-letters itself
        max_ack_pending=max(1000, settings.batch_size * 4),
        filter_subjects=filter_subjects(consumes),
    )


def gateway_consumer_config(settings: Settings) -> ConsumerConfig:
    """The gateway learns of later rejections by reading every dead letter once."""
    return ConsumerConfig(
        durable_name=GATEWAY_CONSUMER,
        description="gateway: dead letters of events it accepted",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait,
        filter_subject=f"{DEADLETTER_PREFIX}.>",
    )


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> str:
    """Create or update one durable consumer (a pull consumer: no deliver subject)."""
    assert config.durable_name
    try:
        await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return f"created consumer {stream}/{config.durable_name}"
    await js.add_consumer(stream, config)  # the server updates what may change
    return f"updated consumer {stream}/{config.durable_name}"


async def ensure_streams(
    js: JetStreamContext, settings: Settings, consumers: Mapping[str, Sequence[str]]
) -> list[str]:
    """Create or update both streams and every durable consumer; say what was done.

    `consumers`: the events each service consumes, by service; the backbone knows no
    service, so the caller passes them (`services.registry.consumers()`)."""
    done = []
    for config in stream_configs(settings):
        assert config.name
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            done.append(f"created {config.name}")
        else:
            await js.update_stream(config)
            done.append(f"updated {config.name}")
    for service, consumes in consumers.items():
        done.append(
            await ensure_consumer(js, EVENTS_STREAM, consumer_config(service, consumes, settings))
        )
    done.append(await ensure_consumer(js, DEADLETTER_STREAM, gateway_consumer_config(settings)))
    return done


async def trust_share_used(js: JetStreamContext) -> dict[tuple[str, str], float]:
    """Each (trust, event type) subject's stored count over the per-subject limit."""
    info = await js.stream_info(EVENTS_STREAM, subjects_filter="ibest.v1.>")
    limit = info.config.max_msgs_per_subject or -1
    if limit <= 0:
        return {}
    used = {}
    for subject, count in (info.state.subjects or {}).items():
        trust, _, event = subject.removeprefix("ibest.v1.").partition(".")
        used[(trust, event)] = count / limit
    return used


HISTORY_BATCH = 500
"""Messages `stored_until_now` fetches at a time: at most this many are held unread."""


async def stored_until_now(
    js: JetStreamContext, stream: str, subject: str, idle_timeout: float = 30.0
) -> AsyncIterator[Msg]:
    """Every message of `stream` on `subject` stored before this call, in stream order.

    A pull consumer fetches a batch at a time, so memory stays bounded however long the
    stream (a push consumer buffers whatever the server sends ahead of the reader, and at a
    million events overran the client as a slow consumer). Raises RuntimeError if the
    stream stops delivering before its stored end.
    """
    end = (await js.stream_info(stream)).state.last_seq
    if not end:
        return
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=idle_timeout,
        ),
    )
    try:
        if (await sub.consumer_info()).num_pending == 0:
            return
        while True:
            try:
                msgs = await sub.fetch(HISTORY_BATCH, timeout=idle_timeout)
            except (NatsTimeout, TimeoutError):
                raise RuntimeError(f"{stream} stopped delivering before sequence {end}") from None
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > end:
                    return  # stored after this call began
                yield msg
                # (nothing pending: the stored end itself was deleted, e.g. by an erasure)
                if seq == end or msg.metadata.num_pending == 0:
                    return
    finally:
        await sub.unsubscribe()
