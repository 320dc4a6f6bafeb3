"""The per-address limit on every path no key covers, as a small ASGI middleware.

The runtime adds `/docs`, `/openapi.json`, `/healthz`, `/readyz` and `/metrics` to every
service, and the router answers unknown paths and wrong methods itself: none of them reaches
the gateway's routes, so none would pass its per-address limit. This middleware, installed by
the gateway's `ServiceSpec.app_setup`, takes one token from the client address's bucket
(`Gateway.admit`: the same `RateLimiter` and the same `client_address` behind the trusted
proxies) for every request except those a route judges itself (`KEYED`: the key's own
limit, or the address's, applies there), and answers 429 as problem details with
`Retry-After`, counted in `ibest_gateway_requests_total{trust="",status="429"}`.

Prometheus scrapes `/metrics` from one compose address every 15 s, far below the address
rate (default 5 a second, bursts of 20; the settings refuse a rate under one per 15 s).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.api.answers import admitted
from services.gateway.api.edge import address_of, respond
from services.gateway.application import Gateway

KEYED = frozenset(
    {
        ("POST", "/v1/events"),
        ("POST", "/v1/events/validate"),
        ("GET", "/v1/rejections"),
        ("POST", "/xapi/statements"),
        ("GET", "/v1/courses"),  # no key, but its use case takes the address's token itself
    }
)
"""(method, path) of the routes that apply a rate limit themselves."""


class AddressLimit:
    """ASGI middleware: `Gateway.admit` for every HTTP request not in `KEYED`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in KEYED:
            await self.app(scope, receive, send)
            return
        gateway: Gateway | None = getattr(scope["app"].state, "service", None)
        if gateway is None:  # not started yet: nothing is served but the runtime's own
            await self.app(scope, receive, send)
            return
        refused = admitted(gateway, address_of(Request(scope), gateway))
        if refused is None:
            await self.app(scope, receive, send)
            return
        await respond(refused)(scope, receive, send)


def limit_unkeyed_paths(app: FastAPI) -> None:
    """The gateway's `app_setup`: every path no key covers is limited per address."""
    app.add_middleware(AddressLimit)
