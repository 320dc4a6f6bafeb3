"""Dead letters: the original bytes and headers, plus who failed it, why and how often.

A dead letter is published on `ibest.deadletter.<consumer>` with the original payload and
headers untouched and these headers added:

| header | meaning |
|---|---|
| `Ibest-Dlq-Consumer` | the durable consumer (service) that gave up |
| `Ibest-Dlq-Reason` | `invalid` (contract or domain rule broken) or `exhausted` (retries) |
| `Ibest-Dlq-Error` | the error, naming the field and rule where there is one |
| `Ibest-Dlq-Deliveries` | how many times it was delivered |
| `Ibest-Dlq-Subject` | the original subject |
| `Ibest-Dlq-Stream-Seq` | its sequence in the events stream |
| `Ibest-Dlq-Msg-Id` | the original `Nats-Msg-Id` (the letter's own: `dlq:<consumer>:<seq>`) |
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ibest.backbone.streams import DEADLETTER_PREFIX, DEADLETTER_STREAM

H_CONSUMER = "Ibest-Dlq-Consumer"
H_REASON = "Ibest-Dlq-Reason"
H_ERROR = "Ibest-Dlq-Error"
H_DELIVERIES = "Ibest-Dlq-Deliveries"
H_SUBJECT = "Ibest-Dlq-Subject"
H_STREAM_SEQ = "Ibest-Dlq-Stream-Seq"
H_MSG_ID = "Ibest-Dlq-Msg-Id"
_OURS = (H_CONSUMER, H_REASON, H_ERROR, H_DELIVERIES, H_SUBJECT, H_STREAM_SEQ, H_MSG_ID,
         "Nats-Msg-Id")
MAX_ERROR_CHARS = 2000


async def dead_letter(
    js: JetStreamContext, msg: Msg, *, consumer: str, reason: str, error: str
) -> None:
    """Keep `msg` in the dead-letter stream; deduplicated if this is a retry of the same."""
    meta = msg.metadata
    # JetStream's publish expectations (e.g. Nats-Expected-Stream) were for the original
    # stream; carried over they would make the dead-letter publish itself fail.
    headers = {k: v for k, v in (msg.headers or {}).items()
               if not k.startswith("Nats-Expected-")}
    if "Nats-Msg-Id" in headers:
        headers[H_MSG_ID] = headers["Nats-Msg-Id"]
    headers.update({
        H_CONSUMER: consumer,
        H_REASON: reason,
        H_ERROR: error.replace("\r", " ").replace("\n", " ")[:MAX_ERROR_CHARS],
        H_DELIVERIES: str(meta.num_delivered),
        H_SUBJECT: msg.subject,
        H_STREAM_SEQ: str(meta.sequence.stream),
        # One dead letter per consumer and stream message, however often this runs.
        "Nats-Msg-Id": f"dlq:{consumer}:{meta.sequence.stream}",
    })
    await js.publish(f"{DEADLETTER_PREFIX}.{consumer}", msg.data, headers=headers)


@dataclass(frozen=True)
class DeadLetter:
    """One stored dead letter as the CLI lists it."""

    seq: int
    consumer: str
    reason: str
    error: str
    deliveries: int
    subject: str
    stream_seq: int
    data: bytes
    headers: dict[str, str]

    @property
    def original_headers(self) -> dict[str, str]:
        original = {k: v for k, v in self.headers.items() if k not in _OURS}
        if H_MSG_ID in self.headers:
            original["Nats-Msg-Id"] = self.headers[H_MSG_ID]
        return original


async def list_dead_letters(
    js: JetStreamContext, consumer: str | None = None, limit: int = 1000
) -> list[DeadLetter]:
    """Read dead letters (oldest first) without consuming them."""
    subject = f"{DEADLETTER_PREFIX}.{consumer or '>'}"
    try:
        info = await js.stream_info(DEADLETTER_STREAM)
    except NotFoundError:
        return []
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe(
        subject, stream=DEADLETTER_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=30),
    )
    out: list[DeadLetter] = []
    try:
        while len(out) < limit:
            try:
                msgs = await sub.fetch(min(100, limit - len(out)), timeout=0.5)
            except TimeoutError:
                break
            for m in msgs:
                h = m.headers or {}
                out.append(DeadLetter(
                    seq=m.metadata.sequence.stream,
                    consumer=h.get(H_CONSUMER, ""),
                    reason=h.get(H_REASON, ""),
                    error=h.get(H_ERROR, ""),
                    deliveries=int(h.get(H_DELIVERIES, "0")),
                    subject=h.get(H_SUBJECT, ""),
                    stream_seq=int(h.get(H_STREAM_SEQ, "0")),
                    data=m.data,
                    headers=dict(h),
                ))
                await m.ack()
            if m.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return out


async def replay_dead_letter(js: JetStreamContext, letter: DeadLetter) -> None:
    """Publish a dead letter's original event again, then remove it from the dead letters.

    It gets a new Nats-Msg-Id so JetStream does not drop it as a duplicate; every consumer
    sees it again, and each one's idempotency by CloudEvent id makes that harmless.
    """
    headers = letter.original_headers
    headers["Nats-Msg-Id"] = f"replay:{letter.seq}:{headers.get('Nats-Msg-Id', '')}"
    await js.publish(letter.subject, letter.data, headers=headers)
    await js.delete_msg(DEADLETTER_STREAM, letter.seq)
