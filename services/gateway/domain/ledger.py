"""What the gateway's id ledger says of an event's (trust, id): judged per trust, forever.

The stream's own de-duplication (`Nats-Msg-Id`, within `IBEST_DUPLICATE_WINDOW`) cannot
answer `duplicate` or `rejected` correctly: it forgets after its window, it does not compare
content, and it is stream-wide. So the gateway remembers every (trust, id) the stream stored
through it with the digest of its content (`ibest.backbone.ledger.content_digest`: the
contract's fields only), and judges each event sent again by it.
"""

from __future__ import annotations

from enum import StrEnum


class Claim(StrEnum):
    NEW = "new"
    """Not stored before for this trust: publish it."""
    STORED = "stored"
    """Stored before with the same content: a true duplicate, however long ago."""
    REUSED = "reused"
    """Stored before with other content: refused ("id already used for a different event")."""


def judge(recorded_digest: str | None, digest: str) -> Claim:
    """The claim of an id sent with `digest`, given the digest stored under it (if any)."""
    if recorded_digest is None:
        return Claim.NEW
    return Claim.STORED if recorded_digest == digest else Claim.REUSED
