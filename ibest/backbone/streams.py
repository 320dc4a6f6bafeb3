"""The two streams, declared here and only here (`ibest streams apply` owns them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
from shared.envelope import MAX_EVENT_BYTES

EVENTS_STREAM = "IBEST_EVENTS"
EVENTS_SUBJECTS = ["ibest.v1.>"]
DEADLETTER_STREAM = "IBEST_DEADLETTER"
DEADLETTER_PREFIX = "ibest.deadletter"
# Dead letters carry the original event plus our headers, so allow some room above it.
DEADLETTER_MAX_BYTES = MAX_EVENT_BYTES + 16 * 1024


def stream_configs(settings: Settings) -> list[StreamConfig]:
    """Events: every event kept (rebuilds replay it), deduplicated on Nats-Msg-Id."""
    return [
        StreamConfig(
            name=EVENTS_STREAM,
            description="Every iBeST contract event, kept as the record rebuilds replay.",
            subjects=EVENTS_SUBJECTS,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.NEW,
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
            storage=StorageType.FILE,
            num_replicas=settings.stream_replicas,
            duplicate_window=settings.duplicate_window,
        ),
    ]


async def ensure_streams(js: JetStreamContext, settings: Settings) -> list[str]:
    """Create or update both streams to the declared configuration; say what was done."""
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
    # The gateway reads every dead letter through this consumer (GET /v1/rejections).
    await js.add_consumer(DEADLETTER_STREAM, ConsumerConfig(
        durable_name="gateway", description="gateway: rejections for trusts",
        deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT,
        filter_subject=f"{DEADLETTER_PREFIX}.>"))
    done.append(f"declared consumer gateway on {DEADLETTER_STREAM}")
    return done


HISTORY_BATCH = 500
"""Messages `stored_until_now` fetches at a time: at most this many are held unread."""


async def stored_until_now(js: JetStreamContext, stream: str, subject: str,
                           idle_timeout: float = 30.0) -> AsyncIterator[Msg]:
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
        subject, stream=stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                              inactive_threshold=idle_timeout))
    try:
        if (await sub.consumer_info()).num_pending == 0:
            return
        while True:
            try:
                msgs = await sub.fetch(HISTORY_BATCH, timeout=idle_timeout)
            except (NatsTimeout, TimeoutError):
                raise RuntimeError(f"{stream} stopped delivering before sequence {end}") \
                    from None
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
