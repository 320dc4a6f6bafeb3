"""From an HTTP request to the events it carries (CloudEvents HTTP protocol binding 1.0).

Three modes: structured (`application/cloudevents+json`, one event as the body), batched
(`application/cloudevents-batch+json`, a JSON array of structured events) and binary (the
attributes as `ce-` headers, the `data` as the body; recognised by `ce-specversion`). Each
event becomes the JSON bytes `shared.envelope.parse_event` judges, the one contract verdict.
A request that cannot be read at all is refused whole, with the status that says why. An
event whose JSON repeats a key in one object is read (to name it) but marked, and refused
alone: parsers disagree on which value counts, so no consumer may ever see it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from shared.envelope import RepeatedKey, refuse_repeated_keys

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_EVENTS = 500
MAX_ID_CHARS = 64
"""Longest id echoed or recorded (the contract's ids are UUIDs, 36 characters)."""


@dataclass(frozen=True)
class RawEvent:
    """One event as sent: its parsed JSON (to name it and check its trust) and its bytes."""

    raw: Any
    body: bytes
    repeated_key: str | None = None
    """A key the event's JSON repeats in one object (the event is then refused)."""

    @property
    def event_id(self) -> str:
        """The id as sent, to name the event in its result and rejection row: empty when it
        has none, or one longer than any the contract allows (so an answer and a stored row
        never echo an arbitrarily long string)."""
        value = self.raw.get("id") if isinstance(self.raw, dict) else None
        return value if isinstance(value, str) and len(value) <= MAX_ID_CHARS else ""


class Why(StrEnum):
    """Why a request is refused whole; the value names its problem type (docs/errors.md),
    and the HTTP edge (services/gateway/api/answers.py) gives each its status."""

    NO_KEY = "no-key"
    UNKNOWN_KEY = "unknown-key"
    RATE_LIMITED = "rate-limited"
    UNREADABLE = "unreadable-body"
    INVALID = "invalid-request"
    TOO_LARGE = "too-large"
    UNSUPPORTED_MEDIA = "unsupported-media-type"


@dataclass(frozen=True)
class Refusal:
    """The whole request refused: why, and a message naming the rule."""

    why: Why
    detail: str
    retry_after: int = 0
    """Seconds to wait before sending again (`Why.RATE_LIMITED`); 0 when it does not apply."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _charset(content_type: str | None) -> str:
    """The `charset` parameter of a Content-Type, lower-cased ('' when absent)."""
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


def decode_request(
    content_type: str | None,
    headers: dict[str, str],
    body: bytes,
    max_events: int = MAX_BATCH_EVENTS,
) -> list[RawEvent] | Refusal:
    """The events of a request, in request order, or why none can be read.

    `headers` are the request's headers with lower-case names.
    """
    kind = media_type(content_type)
    charset = _charset(content_type)
    if charset not in ("", "utf-8", "utf8"):
        return Refusal(
            Why.UNSUPPORTED_MEDIA,
            f"charset {charset[:20]!r} is not accepted: events are UTF-8 (charset=utf-8)",
        )
    if "ce-specversion" in headers:
        return _binary(kind, headers, body)
    if kind not in (STRUCTURED, BATCH):
        return Refusal(
            Why.UNSUPPORTED_MEDIA,
            f"Content-Type {kind or '(none)'!r} is not accepted: send "
            f"{STRUCTURED} (one event), {BATCH} (a JSON array of events) or "
            "binary mode (ce- headers with a JSON body)",
        )
    if kind == STRUCTURED:
        parsed, repeated = _json_noting_repeats(body)
        if isinstance(parsed, Refusal):
            return parsed
        return [RawEvent(parsed, body, repeated)]
    try:
        items = _array_items(body, _STRICT)
    except RepeatedKey:  # rare: read leniently, then find which events repeat a key
        items = _array_items(body, _DECODER)
        if not isinstance(items, Refusal):
            items = [RawEvent(e.raw, e.body, _repeated_key(e.body)) for e in items]
    if isinstance(items, Refusal):
        return items
    if not items:
        return Refusal(Why.UNREADABLE, "the batch is empty: send at least one event")
    if len(items) > max_events:
        return Refusal(
            Why.TOO_LARGE,
            f"the batch has {len(items)} events; the limit is {max_events} per request: split it",
        )
    return items


_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()
_STRICT = json.JSONDecoder(object_pairs_hook=refuse_repeated_keys)


def _repeated_key(body: bytes) -> str | None:
    """The first key `body`'s JSON repeats in one object, if any (`body` is valid JSON)."""
    try:
        _STRICT.decode(body.decode("utf-8"))
    except RepeatedKey as exc:
        return exc.key
    return None


def _array_items(body: bytes, decoder: json.JSONDecoder) -> list[RawEvent] | Refusal:
    """The elements of a JSON array, each with its own bytes exactly as sent (one parse, no
    re-serialising); any malformed body gets the standard parser's message. `RepeatedKey`
    from a strict `decoder` is let through."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Refusal(Why.UNREADABLE, f"the body is not UTF-8 text: {exc}")
    items: list[RawEvent] = []
    try:
        i = _skip(text, 0)
        if text[i : i + 1] != "[":
            raise ValueError("not an array")
        i = _skip(text, i + 1)
        if text[i : i + 1] == "]":
            i += 1
        else:
            while True:
                value, end = decoder.raw_decode(text, i)
                items.append(RawEvent(value, text[i:end].encode()))
                i = _skip(text, end)
                if text[i : i + 1] == ",":
                    i = _skip(text, i + 1)
                elif text[i : i + 1] == "]":
                    i += 1
                    break
                else:
                    raise ValueError("malformed array")
        if _skip(text, i) != len(text):
            raise ValueError("extra data")
    except RepeatedKey:
        raise
    except (ValueError, RecursionError):
        whole = _json(body)  # the standard parser's verdict and message
        if isinstance(whole, Refusal):
            return whole
        if not isinstance(whole, list):
            return Refusal(
                Why.UNREADABLE,
                f"a {BATCH} body must be a JSON array of events, got a JSON {_json_kind(whole)}",
            )
        return [RawEvent(v, json.dumps(v).encode()) for v in whole]  # (not reached in practice)
    return items


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _binary(kind: str, headers: dict[str, str], body: bytes) -> list[RawEvent] | Refusal:
    """Binary mode: attributes from `ce-` headers (percent-decoded), `data` from the body."""
    if kind in (STRUCTURED, BATCH):
        return Refusal(
            Why.UNREADABLE,
            f"a {kind} body must not come with ce- headers: send the "
            "attributes either in the headers (binary mode) or in the body",
        )
    data, repeated = _json_noting_repeats(body)
    if isinstance(data, Refusal):
        return data
    event: dict[str, Any] = {
        name[3:]: unquote(value) for name, value in headers.items() if name.startswith("ce-")
    }
    event["datacontenttype"] = kind
    event["data"] = data
    # ASCII escapes: a lone surrogate in the body ("\ud800") stays an escape the contract
    # then judges, rather than text that cannot be encoded.
    return [RawEvent(event, json.dumps(event).encode(), repeated)]


def _json_noting_repeats(body: bytes) -> tuple[Any, str | None]:
    """`_json`, and the first key the JSON repeats in one object (read strictly first; only a
    body that repeats a key is read twice)."""
    try:
        return _json(body, _STRICT), None
    except RepeatedKey as exc:
        return _json(body), exc.key


def _json(body: bytes, decoder: json.JSONDecoder = _DECODER) -> Any:
    try:
        return decoder.decode(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Refusal(Why.UNREADABLE, f"the body is not UTF-8 text: {exc}")
    except RepeatedKey:  # a strict decoder's verdict, for the caller to judge
        raise
    except ValueError as exc:  # not JSON, or an integer of over 4,300 digits
        if "integer string conversion" in str(exc):  # Python's text advises a Python call
            return Refusal(Why.UNREADABLE, "the body holds a number of over 4,300 digits")
        return Refusal(Why.UNREADABLE, f"the body is not JSON: {str(exc)[:200]}")
    except RecursionError:
        return Refusal(
            Why.UNREADABLE, "the body is not JSON this service can read: nested too deeply"
        )


def _json_kind(value: Any) -> str:
    return {dict: "object", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address a request came from, for its per-address rate limit: the peer's, unless
    the peer is a trusted proxy (the TLS proxy in front of the gateway), then the nearest
    address in `X-Forwarded-For` that is not one (each proxy appends the address it saw, so
    earlier entries, which the client can write, are never believed before later ones)."""

    def is_trusted(text: str) -> bool:
        try:
            address = ipaddress.ip_address(text.strip())
        except ValueError:
            return False
        return any(address in net for net in trusted)

    if not forwarded_for or not is_trusted(peer):
        return peer
    for hop in reversed(forwarded_for.split(",")[-20:]):
        if not is_trusted(hop):
            return hop.strip()[:45]
    return peer
