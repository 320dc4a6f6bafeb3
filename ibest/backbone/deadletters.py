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
| `Ibest-Dlq-Event-Id` | the CloudEvent `id` (empty if unreadable) |
| `Ibest-Dlq-Type` | the event's short name, e.g. `patient.assessed` (`unknown` if unreadable) |
| `Ibest-Dlq-Trust` | the trust code of the envelope, else of the subject, else empty |

Every consumer of an event keeps its own letter (it names that consumer), so one rejected
event may have several; `group_dead_letters` gathers them by the event's stream sequence
into one `RejectedEvent`, which is what every view shows and what `replay` republishes once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ibest.backbone.streams import DEADLETTER_PREFIX, DEADLETTER_STREAM
from shared.envelope import label_event

H_CONSUMER = "Ibest-Dlq-Consumer"
H_REASON = "Ibest-Dlq-Reason"
H_ERROR = "Ibest-Dlq-Error"
H_DELIVERIES = "Ibest-Dlq-Deliveries"
H_SUBJECT = "Ibest-Dlq-Subject"
H_STREAM_SEQ = "Ibest-Dlq-Stream-Seq"
H_MSG_ID = "Ibest-Dlq-Msg-Id"
H_EVENT_ID = "Ibest-Dlq-Event-Id"
H_TYPE = "Ibest-Dlq-Type"
H_TRUST = "Ibest-Dlq-Trust"
_OURS = (
    H_CONSUMER,
    H_REASON,
    H_ERROR,
    H_DELIVERIES,
    H_SUBJECT,
    H_STREAM_SEQ,
    H_MSG_ID,
    H_EVENT_ID,
    H_TYPE,
    H_TRUST,
    "Nats-Msg-Id",
)
MAX_ERROR_CHARS = 2000


async def dead_letter(
    js: JetStreamContext, msg: Msg, *, consumer: str, reason: str, error: str
) -> None:
    """Keep `msg` in the dead-letter stream; deduplicated if this is a retry of the same."""
    meta = msg.metadata
    # JetStream's publish expectations (e.g. Nats-Expected-Stream) were for the original
    # stream; carried over they would make the dead-letter publish itself fail.
    headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-Expected-")}
    if "Nats-Msg-Id" in headers:
        headers[H_MSG_ID] = headers["Nats-Msg-Id"]
    label = label_event(msg.subject, msg.data)
    headers.update(
        {
            H_EVENT_ID: label.event_id,
            H_TYPE: label.name,
            H_TRUST: label.trustcode,
            H_CONSUMER: consumer,
            H_REASON: reason,
            H_ERROR: error.replace("\r", " ").replace("\n", " ")[:MAX_ERROR_CHARS],
            H_DELIVERIES: str(meta.num_delivered),
            H_SUBJECT: msg.subject,
            H_STREAM_SEQ: str(meta.sequence.stream),
            # One dead letter per consumer and stream message, however often this runs.
            "Nats-Msg-Id": f"dlq:{consumer}:{meta.sequence.stream}",
        }
    )
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
    def event_id(self) -> str:
        return self.headers.get(H_EVENT_ID, "")

    @property
    def event_type(self) -> str:
        return self.headers.get(H_TYPE, "")

    @property
    def trust(self) -> str:
        return self.headers.get(H_TRUST, "")

    @property
    def original_headers(self) -> dict[str, str]:
        original = {k: v for k, v in self.headers.items() if k not in _OURS}
        if H_MSG_ID in self.headers:
            original["Nats-Msg-Id"] = self.headers[H_MSG_ID]
        return original


async def list_dead_letters(
    js: JetStreamContext,
    consumer: str | None = None,
    limit: int = 1000,
    *,
    trust: str | None = None,
    event_id: str | None = None,
) -> list[DeadLetter]:
    """Read dead letters (oldest first) without consuming them; `trust` and `event_id`
    keep only those of that trust code or CloudEvent id."""
    subject = f"{DEADLETTER_PREFIX}.{consumer or '>'}"
    try:
        info = await js.stream_info(DEADLETTER_STREAM)
    except NotFoundError:
        return []
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe(
        subject,
        stream=DEADLETTER_STREAM,
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
                await m.ack()
                if (trust is not None and h.get(H_TRUST, "") != trust) or (
                    event_id is not None and h.get(H_EVENT_ID, "") != event_id.lower()
                ):
                    continue
                out.append(
                    DeadLetter(
                        seq=m.metadata.sequence.stream,
                        consumer=h.get(H_CONSUMER, ""),
                        reason=h.get(H_REASON, ""),
                        error=h.get(H_ERROR, ""),
                        deliveries=int(h.get(H_DELIVERIES, "0")),
                        subject=h.get(H_SUBJECT, ""),
                        stream_seq=int(h.get(H_STREAM_SEQ, "0")),
                        data=m.data,
                        headers=dict(h),
                    )
                )
            if m.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return out


@dataclass(frozen=True)
class RejectedEvent:
    """One rejected event with the letters of every consumer that rejected it."""

    letters: tuple[DeadLetter, ...]

    @property
    def first(self) -> DeadLetter:
        return self.letters[0]

    @property
    def stream_seq(self) -> int:
        return self.first.stream_seq

    @property
    def seqs(self) -> tuple[int, ...]:
        return tuple(d.seq for d in self.letters)

    @property
    def consumers(self) -> tuple[str, ...]:
        return tuple(sorted({d.consumer for d in self.letters}))

    @property
    def errors(self) -> dict[str, str]:
        """Each consumer's reason and error, e.g. `{"reporting": "invalid: data.x: ..."}`."""
        return {d.consumer: f"{d.reason}: {d.error}" for d in self.letters}

    def verdict(self, consumers_of: Mapping[str, Collection[str]]) -> str:
        """Whether the platform as a whole rejected the event (every service that consumes
        its type, for the same reason) or only some service did, which needs a look."""
        expected = sorted(consumers_of.get(self.first.event_type, ()))
        rejected = self.consumers
        same = len(set(self.errors.values())) == 1
        if expected and set(expected) <= set(rejected) and same:
            return f"rejected by the platform (every consumer: {', '.join(rejected)})"
        if not expected:
            return f"rejected by {', '.join(rejected)} (no service consumes this event type)"
        others = [c for c in expected if c not in rejected]
        detail = f"; not by {', '.join(others)}" if others else "; reasons differ"
        return f"rejected by {', '.join(rejected)} only{detail}"


def group_dead_letters(letters: list[DeadLetter]) -> list[RejectedEvent]:
    """One `RejectedEvent` per rejected stream message (its events-stream sequence), in the
    order of each one's first letter. A letter without a sequence stands alone."""
    groups: dict[tuple[str, int], list[DeadLetter]] = {}
    for d in letters:
        key = ("seq", d.stream_seq) if d.stream_seq > 0 else ("letter", d.seq)
        groups.setdefault(key, []).append(d)
    return [RejectedEvent(tuple(g)) for g in groups.values()]


async def replay_dead_letter(js: JetStreamContext, letter: DeadLetter | RejectedEvent) -> None:
    """Publish a rejected event's original bytes again, once, then remove every letter of it.

    It gets a new, random Nats-Msg-Id, so JetStream does not drop it as a duplicate and no
    trust can publish one first to suppress it (a predictable one, such as the letter's
    sequence, could be); every consumer sees it again, and each one's idempotency by (trust,
    CloudEvent id) makes that harmless.
    """
    group = letter if isinstance(letter, RejectedEvent) else RejectedEvent((letter,))
    first = group.first
    headers = first.original_headers
    headers["Nats-Msg-Id"] = f"replay:{uuid.uuid4()}"
    await js.publish(first.subject, first.data, headers=headers)
    for seq in group.seqs:
        await js.delete_msg(DEADLETTER_STREAM, seq)
