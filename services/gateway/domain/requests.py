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

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from shared.envelope import RepeatedKey, refuse_repeated_keys

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_EVENTS = 500


@dataclass(frozen=True)
class RawEvent:
    """One event as sent: its parsed JSON (to name it and check its trust) and its bytes."""

    raw: Any
    body: bytes
    repeated_key: str | None = None
    """A key the event's JSON repeats in one object (the event is then refused)."""

    @property
    def event_id(self) -> str:
        value = self.raw.get("id") if isinstance(self.raw, dict) else None
        return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Refusal:
    """The whole request refused: HTTP status, a message naming the rule, extra headers."""

    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


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
    if "ce-specversion" in headers:
        return _binary(kind, headers, body)
    if kind not in (STRUCTURED, BATCH):
        return Refusal(
            415,
            f"Content-Type {kind or '(none)'!r} is not accepted: send "
            f"{STRUCTURED} (one event), {BATCH} (a JSON array of events) or "
            "binary mode (ce- headers with a JSON body)",
            {"Accept-Post": f"{STRUCTURED}, {BATCH}"},
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
        return Refusal(400, "the batch is empty: send at least one event")
    if len(items) > max_events:
        return Refusal(
            413,
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
        return Refusal(400, f"the body is not UTF-8 text: {exc}")
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
                400,
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
            400,
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
    return [RawEvent(event, json.dumps(event, ensure_ascii=False).encode(), repeated)]


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
        return Refusal(400, f"the body is not UTF-8 text: {exc}")
    except json.JSONDecodeError as exc:
        return Refusal(400, f"the body is not JSON: {exc}")
    except RecursionError:
        return Refusal(400, "the body is not JSON this service can read: nested too deeply")


def _json_kind(value: Any) -> str:
    return {dict: "object", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
