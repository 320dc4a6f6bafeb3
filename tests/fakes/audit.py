"""In memory: the audit log port (ibest.backbone.audit.AuditLog's `record`)."""

from __future__ import annotations

from typing import Any

from ibest.backbone.audit import Action, Actor
from ibest.backbone.document import Document


class AuditUnavailable(Exception):
    """What a fake audit log that cannot be written raises."""


class FakeAuditTrail:
    """Keeps every record in order; with `failing`, refuses to write (as an unreachable log)."""

    def __init__(self, *, failing: bool = False) -> None:
        self.records: list[Document] = []
        self.failing = failing

    async def record(self, action: Action, actor: Actor, **what: Any) -> Document:
        if self.failing:
            raise AuditUnavailable("the audit log cannot be written")
        doc: Document = {
            "action": action,
            "via": actor.via,
            "token_id": actor.token_id,
            "operator": actor.operator,
            **what,
        }
        self.records.append(doc)
        return doc
