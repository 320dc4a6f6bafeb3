"""Where the gateway's domain outcomes become HTTP statuses and problem documents: the edge,
and only here. The use cases (services/gateway/application.py) answer with a `Refusal`
(why a request is refused whole), an `Answered` (a verdict and each event's result) or a
`RejectionPage`; this module gives each its status, headers and body (problem details,
docs/errors.md), and counts it in `ibest_gateway_requests_total`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from ibest.backbone.problems import problem
from services.gateway.application import Answered, Gateway, Ingested, RejectionPage
from services.gateway.domain.requests import BATCH, STRUCTURED, Refusal, Why
from services.gateway.domain.results import EventResult, Verdict

UNAUTHENTICATED = 'Bearer realm="ibest", error="invalid_token"'

STATUS_OF_REFUSAL = {
    Why.NO_KEY: 401,
    Why.UNKNOWN_KEY: 401,
    Why.RATE_LIMITED: 429,
    Why.UNREADABLE: 400,
    Why.INVALID: 400,
    Why.TOO_LARGE: 413,
    Why.UNSUPPORTED_MEDIA: 415,
}
STATUS_OF_VERDICT = {
    Verdict.STORED: 200,
    Verdict.FORBIDDEN: 403,
    Verdict.REJECTED: 422,
    Verdict.UNAVAILABLE: 503,
    Verdict.SHARE_EXHAUSTED: 507,
}
_VERDICT_DETAILS = {
    Verdict.FORBIDDEN: "this key may not send some of these events (a trust's key sends its "
    "own trust's events, a course-platform key training events, neither the events the "
    "platform derives); each rejected result says why; nothing stored",
    Verdict.REJECTED: "not every event was stored; each rejected result says why",
    Verdict.UNAVAILABLE: "the event stream is unreachable; the results say which events were "
    "stored, send the others again after Retry-After",
    Verdict.SHARE_EXHAUSTED: "the trust's share of the store for an event type is full; "
    "sending again will not store those events: ask the iBeST operators",
}


@dataclass
class Reply:
    """What a route answers: status, JSON body, extra headers. A body of an error status is
    a problem details document (ibest.backbone.problems)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def refused(refusal: Refusal) -> Reply:
    """A request refused whole, as problem details with the headers its status calls for."""
    status = STATUS_OF_REFUSAL[refusal.why]
    headers: dict[str, str] = {}
    if refusal.why is Why.NO_KEY:
        headers["WWW-Authenticate"] = 'Bearer realm="ibest"'
    elif refusal.why is Why.UNKNOWN_KEY:
        headers["WWW-Authenticate"] = UNAUTHENTICATED
    elif refusal.why is Why.UNSUPPORTED_MEDIA:
        headers["Accept-Post"] = f"{STRUCTURED}, {BATCH}"
    if refusal.retry_after:
        headers["Retry-After"] = str(refusal.retry_after)
    return Reply(status, problem(status, refusal.why.value, refusal.detail), headers)


_RESULTS = TypeAdapter(list[EventResult])


def _dump(results: Sequence[EventResult]) -> list[dict[str, Any]]:
    """As JSON-ready dicts, in one call (a batch's 500 results dumped one by one cost more
    than twice as much)."""
    dumped: list[dict[str, Any]] = _RESULTS.dump_python(list(results), mode="json")
    return dumped


def answered(answer: Answered) -> Reply:
    """200 with the results; any other verdict, a problem document carrying them."""
    status = STATUS_OF_VERDICT[answer.verdict]
    headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else {}
    dumped = _dump(answer.results)
    if answer.verdict is Verdict.STORED:
        return Reply(200, {"results": dumped}, headers)
    detail = _VERDICT_DETAILS[answer.verdict]
    return Reply(status, problem(status, answer.verdict.value, detail, results=dumped), headers)


def ingested(gateway: Gateway, done: Ingested, started: float) -> Reply:
    """The answer to `POST /v1/events` (or `/validate`), counted in the request metrics."""
    outcome = done.outcome
    reply = refused(outcome) if isinstance(outcome, Refusal) else answered(outcome)
    results = [] if isinstance(outcome, Refusal) else outcome.results
    gateway.metrics.observe(done.trust, reply.status, results, gateway.timer() - started)
    return reply


def rejection_page(gateway: Gateway, page: RejectionPage | Refusal) -> Reply:
    """The answer to `GET /v1/rejections`; a refusal (no key or a refused one, over a rate,
    a bad `since` or cursor) counted as `trust=""`, so a key guessed on this route raises
    the key-failure alert as on `POST /v1/events` (a page of rows is not events traffic,
    and is not counted)."""
    if isinstance(page, Refusal):
        reply = refused(page)
        gateway.metrics.observe("", reply.status, [], 0.0)
        return reply
    return Reply(
        200,
        {
            "trust": page.trust,
            "since": page.since.isoformat(),
            "rejections": [row.model_dump(mode="json") for row in page.rows],
            "next": page.next,
        },
    )


def admitted(gateway: Gateway, address: str) -> Reply | None:
    """`Gateway.admit` for a request no key covers: None to go on, else the 429, counted as
    `trust=""`."""
    started = gateway.timer()
    refusal = gateway.admit(address)
    if refusal is None:
        return None
    reply = refused(refusal)
    gateway.metrics.observe("", reply.status, [], gateway.timer() - started)
    return reply
