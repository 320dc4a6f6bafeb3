"""The gateway's OpenAPI request bodies: the contract's event schemas, inlined, so the
committed document (docs/openapi/gateway.json) tells an integrator, and a generative test,
exactly what an event is."""

from __future__ import annotations

from typing import Any

from services.gateway.domain.requests import BATCH, MAX_BATCH_EVENTS, STRUCTURED
from services.gateway.domain.results import DERIVED_EVENTS
from shared.envelope import EVENT_TYPES, CloudEvent


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with every `#/$defs/...` reference replaced by its definition (the contract
    has no recursive type), so the schema stands alone inside the OpenAPI document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def event_schemas() -> list[dict[str, Any]]:
    """One schema per event type a trust sends."""
    out = []
    for etype in EVENT_TYPES:
        if etype.name in DERIVED_EVENTS:
            continue
        schema = CloudEvent[etype.payload].model_json_schema()  # type: ignore[name-defined]
        schema = _inline(schema, schema.get("$defs", {}))
        schema["title"] = etype.name
        schema["properties"]["type"] = {"const": etype.ce_type, "type": "string"}
        out.append(schema)
    return out


def request_body() -> dict[str, Any]:
    """`openapi_extra` of POST /v1/events and /v1/events/validate."""
    one = {"oneOf": event_schemas()}
    return {
        "requestBody": {
            "required": True,
            "content": {
                STRUCTURED: {"schema": one},
                BATCH: {
                    "schema": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_BATCH_EVENTS,
                        "items": one,
                        "description": f"Up to {MAX_BATCH_EVENTS} CloudEvents.",
                    }
                },
                "application/json": {
                    "schema": {"type": "object"},
                    "description": "Binary mode: the event's data, attributes as ce- headers "
                    "(ce-specversion, ce-id, ce-source, ce-type, ce-time, ce-trustcode, "
                    "ce-sitecode; any ce- extension is tolerated and not kept).",
                },
            },
        },
    }
