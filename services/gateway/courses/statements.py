"""The xAPI use case: `POST /xapi/statements` and `GET /xapi/about` for course-platform
keys. Depends only on `ports.py`, the gateway's ports and the backbone's `Publisher`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ibest.backbone.publisher import Publisher, Publishing
from services.gateway.courses.domain.learners import learner_key
from services.gateway.courses.domain.progress import fact_event
from services.gateway.courses.domain.xapi import (
    VERSION,
    Mapped,
    Statement,
    StatementError,
    map_statement,
    read_statement,
    statement_event_id,
)
from services.gateway.courses.ports import (
    CourseMetrics,
    LearnerStore,
    StatementLedger,
    StoredStatement,
)
from services.gateway.domain.keys import COURSE_PLATFORM, ApiKey
from services.gateway.domain.rejections import GATEWAY, Reason, Rejection
from services.gateway.domain.requests import Refusal
from services.gateway.ports import RejectionStore
from shared.catalogue import Catalogue
from shared.envelope import ContractError

Clock = Callable[[], datetime]


class XapiWhy(StrEnum):
    """Why statements are refused, all of them; the value names the problem type, and the
    HTTP edge (services/gateway/api/xapi.py) gives each its status."""

    NOT_A_COURSE_PLATFORM = "forbidden"
    INVALID = "invalid-request"
    UNREADABLE = "unreadable-body"
    ID_CONFLICT = "id-conflict"
    RATE_LIMITED = "rate-limited"
    STREAM_UNAVAILABLE = "stream-unavailable"


CHARGED = frozenset({XapiWhy.NOT_A_COURSE_PLATFORM, XapiWhy.INVALID, XapiWhy.UNREADABLE})
"""Refusals of a request with a valid key that are charged to its client address too."""


@dataclass(frozen=True)
class XapiRefusal:
    """The statements refused, none stored: why, a message, and `errors` (field, code,
    message) where statements are at fault."""

    why: XapiWhy
    detail: str
    errors: Sequence[dict[str, str]] = ()
    retry_after: int = 0
    """Seconds to wait before sending again (`XapiWhy.RATE_LIMITED`); 0 otherwise."""


@dataclass(frozen=True)
class XapiStored:
    """Every statement stored, a duplicate or ignored: their ids, in request order."""

    ids: list[str]


MAX_STATEMENTS = 500
Authenticate = Callable[[str | None, str], Awaitable[ApiKey | Refusal]]


class XapiStatements:
    """`POST /xapi/statements` and `GET /xapi/about` for course-platform keys: all or nothing,
    as an LRS; ignored statements acknowledged, counted and listed."""

    def __init__(
        self,
        authenticate: Authenticate,
        learners: LearnerStore,
        statements: StatementLedger,
        rejections: RejectionStore,
        stream: Publisher,
        metrics: CourseMetrics,
        catalogue: Catalogue,
        key: bytes,
        clock: Clock,
        limit: Callable[[str], int] = lambda _: 0,
        charge: Callable[[str], int] = lambda _: 0,
    ) -> None:
        """`limit`: seconds the key's holder must wait before another request (0: go on);
        the gateway's rate limiter, so a course platform has one rate for both doors.
        `charge`: takes a token from a client address (the gateway's per-address limiter),
        for a request refused whole, as `/v1` does."""
        self.authenticate, self.learners, self.statements = authenticate, learners, statements
        self.rejections, self.stream, self.metrics = rejections, stream, metrics
        self.catalogue, self.key, self.clock, self.limit = catalogue, key, clock, limit
        self.charge = charge

    @staticmethod
    def about() -> dict[str, Any]:
        return {"version": [VERSION]}

    async def post(
        self, authorization: str | None, version: str | None, body: bytes, address: str = ""
    ) -> XapiStored | XapiRefusal | Refusal:
        """Authenticate (a request without a valid key is charged to its client `address`,
        and its refusal returned as the gateway gave it), check, then store the statements
        all or nothing; a request refused whole with a valid key (400, 403) is charged to the
        address too."""
        key = await self.authenticate(authorization, address)
        if isinstance(key, Refusal):
            return key
        outcome = await self._post(key, version, body)
        if isinstance(outcome, XapiRefusal) and outcome.why in CHARGED:
            self.charge(address)
        return outcome

    async def _post(
        self, key: ApiKey, version: str | None, body: bytes
    ) -> XapiStored | XapiRefusal:
        if key.course_platform is None:
            return XapiRefusal(
                XapiWhy.NOT_A_COURSE_PLATFORM,
                "xAPI statements are accepted only with a course-platform key (`ibest gateway "
                "keys create --course-platform NAME`); a trust key sends CloudEvents to /v1/events",
                [
                    {
                        "field": "Authorization",
                        "code": "not-a-course-platform-key",
                        "message": "this key belongs to a trust",
                    }
                ],
            )
        if not (version or "").strip().startswith("1.0"):
            return XapiRefusal(
                XapiWhy.INVALID,
                "the X-Experience-API-Version header is required (1.0.x, e.g. 1.0.3)",
                [
                    {
                        "field": "X-Experience-API-Version",
                        "code": "version-required",
                        "message": f"is {version!r}; send 1.0.3"
                        if version
                        else "is missing; send 1.0.3",
                    }
                ],
            )
        wait = self.limit(key.trust)
        if wait:
            return XapiRefusal(
                XapiWhy.RATE_LIMITED,
                f"{key.trust} is over its request rate; retry after {wait}s",
                retry_after=wait,
            )
        return await self._statements(key.course_platform, body)

    async def _statements(self, platform: str, body: bytes) -> XapiStored | XapiRefusal:
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return XapiRefusal(
                XapiWhy.UNREADABLE,
                f"the body is not JSON: {exc}",
                [{"field": "body", "code": "not-json", "message": str(exc)}],
            )
        raw = parsed if isinstance(parsed, list) else [parsed]
        if not raw or len(raw) > MAX_STATEMENTS:
            return XapiRefusal(
                XapiWhy.INVALID,
                f"send 1 to {MAX_STATEMENTS} statements",
                [{"field": "body", "code": "batch-size", "message": f"{len(raw)} statements"}],
            )
        read: list[Statement] = []
        errors = []
        for i, item in enumerate(raw):
            try:
                read.append(read_statement(item))
            except StatementError as exc:
                errors.append(
                    {
                        "field": f"statements[{i}].{exc.field}",
                        "code": exc.code,
                        "message": exc.message,
                    }
                )
            except RecursionError:
                errors.append(
                    {
                        "field": f"statements[{i}]",
                        "code": "too-deep",
                        "message": "nested too deeply to read",
                    }
                )
        if errors:
            self.metrics.statements(platform, "refused", len(raw))
            return XapiRefusal(
                XapiWhy.INVALID,
                f"{len(errors)} of {len(raw)} statements are invalid; none stored",
                errors,
            )
        return await self._store(platform, read)

    async def _store(self, platform: str, read: list[Statement]) -> XapiStored | XapiRefusal:
        ids = [s.id for s in read]
        first: dict[str, Statement] = {}
        for i, s in enumerate(read):
            if first.setdefault(s.id, s).digest != s.digest:
                return XapiRefusal(
                    XapiWhy.INVALID,
                    "one id, two statements in this request",
                    [
                        {
                            "field": f"statements[{i}].id",
                            "code": "id-repeated",
                            "message": f"{s.id} appears earlier with other content",
                        }
                    ],
                )
        stored = await self.statements.get_many(list(first))
        conflicts = [s for s in first.values() if s.id in stored and stored[s.id] != s.digest]
        if conflicts:
            return XapiRefusal(
                XapiWhy.ID_CONFLICT,
                "a statement with this id is stored with other content; nothing stored",
                [
                    {
                        "field": f"statements[{ids.index(s.id)}].id",
                        "code": "id-conflict",
                        "message": f"{s.id} is stored with other content",
                    }
                    for s in conflicts
                ],
            )
        new = [s for s in first.values() if s.id not in stored]
        accounts = {
            s.id: learner_key(self.key, s.account[0], s.account[1]) for s in new if s.account
        }
        learners = await self.learners.get_many(sorted(set(accounts.values())))
        events: list[Publishing] = []
        records: list[StoredStatement] = []
        ignored: list[tuple[Statement, str]] = []
        errors = []
        for s in new:
            mapped = map_statement(s, self.catalogue)
            clinician = learners.get(accounts.get(s.id, ""))
            if isinstance(mapped, Mapped) and clinician is None:
                mapped = (
                    "the actor is not a mapped learner (actor.account of a learner the "
                    "import or mapping file knows)"
                )
            if isinstance(mapped, str):
                ignored.append((s, mapped))
                records.append(StoredStatement(s.id, s.digest, platform, None, mapped))
                continue
            assert clinician is not None
            event_id = statement_event_id(self.key, s.id)
            try:
                event = fact_event(
                    mapped.fact,
                    clinician,
                    mapped.course_version,
                    event_id,
                    f"/course-platform/xapi/{platform}",
                )
            except ContractError as exc:
                errors.append(
                    {
                        "field": f"statements[{ids.index(s.id)}]",
                        "code": "refused-event",
                        "message": str(exc),
                    }
                )
                continue
            events.append((event, None))
            records.append(StoredStatement(s.id, s.digest, platform, str(event_id), None))
        if errors:
            self.metrics.statements(platform, "refused", len(read))
            return XapiRefusal(
                XapiWhy.INVALID,
                "the events these statements make are refused; none stored",
                errors,
            )
        outcomes = await self.stream.publish_many(events) if events else []
        if any(o is None for o in outcomes):
            return XapiRefusal(
                XapiWhy.STREAM_UNAVAILABLE,
                "the event stream did not acknowledge "
                "every statement; send the request again (safe)",
            )
        now = self.clock()
        await self.statements.record(records, now)
        if ignored:
            await self.rejections.record(
                [
                    Rejection(
                        f"{COURSE_PLATFORM}{platform}",
                        s.id,
                        "xapi.statement",
                        now,
                        (Reason(by=GATEWAY, field="statement", message=f"ignored: {why}"),),
                    )
                    for s, why in ignored
                ]
            )
        self.metrics.statements(platform, "accepted", sum(1 for o in outcomes if o))
        self.metrics.statements(
            platform, "duplicate", len(read) - len(new) + sum(1 for o in outcomes if o is False)
        )
        self.metrics.statements(platform, "ignored", len(ignored))
        return XapiStored(ids)
