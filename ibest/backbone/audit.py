"""The one append-only audit log: who read raw figures, and every erasure or opt-out change.

Records live in their own database, `<prefix>_audit`, collection `records`, so a deployment
can grant services and operators insert and find there and nothing else. This module only
ever inserts and reads: no record is updated or deleted. A record names a token by its id
(ibest.backbone.tokens), never the token; for commands run by an operator it names the
command and the operating-system user. Recording happens before the answer is sent: if the
log cannot be written, the request fails (503) rather than going unrecorded.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bson import ObjectId
from prometheus_client import Counter
from pymongo import DESCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ibest.backbone.clock import Clock, utc_now
from ibest.backbone.document import Document
from ibest.backbone.settings import Settings

Action = Literal[
    "raw_report",
    "erasure",
    "opt_out",
    "opt_in",
    # The forms' site-team actions (services/forms): by site key id, never a patient's details.
    "site_sign_in",
    "patient_added",
    "paper_entry",
    "patient_link",
]
ACTIONS: tuple[Action, ...] = (
    "raw_report",
    "erasure",
    "opt_out",
    "opt_in",
    "site_sign_in",
    "patient_added",
    "paper_entry",
    "patient_link",
)
DATABASE = "audit"
"""The log's database is `Settings.database_of("audit")`, i.e. `<prefix>_audit`."""
COLLECTION = "records"
QUERY_KEPT = 2048
"""Characters of a query string recorded; a longer one is cut (and marked so) so nobody can
make the log grow by asking with huge parameters."""

AUDIT_RECORDS = Counter(
    "ibest_audit_records_total",
    "Audit records this process wrote, by action (raw_report, erasure, opt_out, opt_in).",
    ["action"],
)


@dataclass(frozen=True)
class Actor:
    """Who did it: a token over HTTP, or an operator's command."""

    via: Literal["http", "cli"]
    token_id: str | None = None
    operator: str | None = None

    @classmethod
    def command(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry for this uid (containers)
            user = "unknown"
        return cls("cli", None, user)


class AuditLog:
    """Insert and read audit records; nothing else (append-only by construction)."""

    def __init__(self, db: AsyncDatabase[Document], clock: Clock = utc_now) -> None:
        self.records = db[COLLECTION]
        self.clock = clock

    async def record(self, action: Action, actor: Actor, **what: Any) -> Document:
        """Write one record (`what` says what was asked and answered) and count it."""
        # ObjectIds grow within a process, so records of one millisecond keep their order.
        doc: Document = {
            "_id": ObjectId(),
            "at": self.clock(),
            "action": action,
            "via": actor.via,
            "token_id": actor.token_id,
            "operator": actor.operator,
            **what,
        }
        await self.records.insert_one(doc)
        AUDIT_RECORDS.labels(action).inc()
        return doc

    async def raw_report(
        self, token_id: str, path: str, query: str, status: int, size: int
    ) -> Document:
        """A request that used the raw scope: what was asked and how big the answer was."""
        cut = len(query) > QUERY_KEPT
        return await self.record(
            "raw_report",
            Actor("http", token_id),
            path=path,
            query=query[:QUERY_KEPT],
            query_truncated=cut,
            status=status,
            size_bytes=size,
        )

    async def find(
        self,
        *,
        since: datetime | None = None,
        action: str | None = None,
        token_id: str | None = None,
        limit: int = 1000,
    ) -> list[Document]:
        """Newest first."""
        query: Document = {}
        if since is not None:
            query["at"] = {"$gte": since}
        if action is not None:
            query["action"] = action
        if token_id is not None:
            query["token_id"] = token_id
        cursor = self.records.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)])
        return [doc async for doc in cursor.limit(limit)]


def audit_log_of(
    client: AsyncMongoClient[Document], settings: Settings, clock: Clock = utc_now
) -> AuditLog:
    return AuditLog(client[settings.database_of(DATABASE)], clock)
