"""The enrolment, outcomes and notifications HTTP APIs over real HTTP: every route that
changes state or reveals a clinician or patient needs a service token (401 with
WWW-Authenticate otherwise); the course catalogue and operations routes stay open."""

from __future__ import annotations

import httpx
import pytest

from ibest.backbone.runtime import ServiceSpec
from ibest.backbone.settings import Settings
from ibest.backbone.tokens import parse_tokens
from services.enrolment.service import SPEC as ENROLMENT
from services.notifications.service import SPEC as NOTIFICATIONS
from services.outcomes.service import SPEC as OUTCOMES
from tests.harness import SERVICE_AUTH, running_service

GUARDED = {
    "enrolment": [("GET", "/v1/clinicians/c-1")],
    "outcomes": [("GET", "/v1/patients/RTH/p-1"), ("GET", "/v1/patients/RTH/p-1/followups")],
    "notifications": [
        ("POST", "/v1/opt-outs/c-1"),
        ("DELETE", "/v1/opt-outs/c-1"),
        ("GET", "/v1/reminders/training:c-1:1"),
    ],
}
OPEN = {
    "enrolment": ["/v1/courses"],
    "outcomes": [],
    "notifications": ["/v1/scheduler"],
}
BAD = [
    {},
    {"Authorization": "Bearer nope"},
    {"Authorization": "Basic dGVzdHM6eA=="},
    {"Authorization": "Bearer"},
    {"Authorization": SERVICE_AUTH["Authorization"][7:]},
    {"Authorization": SERVICE_AUTH["Authorization"] + "x"},
]


@pytest.mark.parametrize("spec", [ENROLMENT, OUTCOMES, NOTIFICATIONS], ids=lambda s: s.name)
async def test_guarded_routes_need_a_service_token_and_open_ones_do_not(
    settings: Settings, spec: ServiceSpec
) -> None:
    async with running_service(spec, settings) as base, httpx.AsyncClient(base_url=base) as api:
        for method, path in GUARDED[spec.name]:
            for headers in BAD:
                r = await api.request(method, path, headers=headers)
                assert r.status_code == 401, (spec.name, method, path, headers, r.status_code)
                assert r.headers["www-authenticate"].startswith("Bearer realm=")
                assert "detail" in r.json()
            r = await api.request(method, path, headers=SERVICE_AUTH)
            assert r.status_code in (200, 404), (spec.name, method, path, r.status_code)
        for path in [*OPEN[spec.name], "/healthz", "/readyz", "/metrics"]:
            assert (await api.get(path)).status_code == 200, (spec.name, path)
        schema = (await api.get("/openapi.json")).json()
        for method, path in GUARDED[spec.name]:
            template = next(
                p
                for p in schema["paths"]
                if p.split("{")[0] == path[: len(p.split("{")[0])]
                and p.count("/") == path.count("/")
            )
            operation = schema["paths"][template][method.lower()]
            assert "401" in operation["responses"], (spec.name, template)
            assert operation.get("security") == [{"ServiceToken": []}], (spec.name, template)


async def test_no_service_tokens_configured_refuses_every_guarded_route(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBEST_SERVICE_TOKENS", "")
    async with (
        running_service(NOTIFICATIONS, settings) as base,
        httpx.AsyncClient(base_url=base, headers=SERVICE_AUTH) as api,
    ):
        assert (await api.post("/v1/opt-outs/c-1")).status_code == 401


def test_token_settings_are_checked_with_clear_messages() -> None:
    assert [
        (t.id, t.scope) for t in parse_tokens("ops:s3cret:raw, legacy:read", "X", ("read", "raw"))
    ] == [("ops", "raw"), (parse_tokens("legacy", "Y")[0].id, "read")]
    for bad, rule in [
        ("ops:s3cret:admin", "scope"),
        ("op s:x:read", "token id"),
        ("a:x:read,a:y:raw", "unique"),
        ("ops:s3 cret:read", "printable"),
    ]:
        with pytest.raises(ValueError, match=rule) as caught:
            parse_tokens(bad, "IBEST_REPORTING_TOKENS", ("read", "raw"))
        assert "s3cret" not in str(caught.value) and "IBEST_REPORTING_TOKENS" in str(caught.value)
