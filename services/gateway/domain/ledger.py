"""What the gateway's id ledger says of an event's (trust, id): judged per trust, forever.

The stream's own de-duplication (`Nats-Msg-Id`, within `IBEST_DUPLICATE_WINDOW`) cannot
answer `duplicate` or `rejected` correctly: it forgets after its window, it does not compare
content, and it is stream-wide. So the gateway remembers every (trust, id) it was asked to
store with the digest of its content (`ibest.backbone.consumer.content_digest`: the
contract's fields only) and whether the stream acknowledged it.
"""

from __future__ import annotations

from enum import StrEnum


class Claim(StrEnum):
    FRESH = "fresh"
    """First time this trust sent this id: publish it."""
    PENDING = "pending"
    """Sent before with the same content but never acknowledged: publish it again."""
    STORED = "stored"
    """Stored before with the same content: a true duplicate, however long ago."""
    REUSED = "reused"
    """Sent before with other content: refused ("id already used for a different event")."""


def judge(recorded_digest: str, stored: bool, digest: str) -> Claim:
    """The claim of an id already in the ledger, sent again with `digest`."""
    if recorded_digest != digest:
        return Claim.REUSED
    return Claim.STORED if stored else Claim.PENDING
