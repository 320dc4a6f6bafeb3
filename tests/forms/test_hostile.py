"""Hostile and careless use of the forms over real HTTP: rate limits per client and per
link (429 with Retry-After), unknown pages and methods (plain pages, never JSON or a stack
trace), oversized and token-less posts, sessions that expire, site-team routes without a
live session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.routing import APIRoute

from ibest.backbone.settings import Settings
from services.forms import bootstrap
from services.forms.api import routes
from services.forms.service import build_spec
from services.forms.settings import FormsSettings
from tests.forms.conftest import hidden
from tests.forms.test_site_teams import sign_in
from tests.harness import metric_samples, running_service


@pytest.fixture
async def strict_forms(settings: Settings, forms_settings: FormsSettings) -> AsyncIterator[str]:
    """Forms with a low rate (1/s, 3 at once) and sessions of one minute, on a clock the
    test moves."""
    own = forms_settings.model_copy(
        update={"rate_per_second": 1.0, "rate_burst": 3, "session_minutes": 1.0}
    )
    async with running_service(build_spec(own), settings, lambda: NOW[0]) as base:
        yield base


NOW = [datetime.now(UTC)]


async def test_rate_limits_and_plain_pages(strict_forms: str) -> None:
    async with httpx.AsyncClient(base_url=strict_forms) as client:
        answers = [(await client.get("/c/f1.forged")).status_code for _ in range(5)]
        assert answers[:3] == [403, 403, 403] and answers[-1] == 429
        r = await client.get("/c/f1.forged")
        assert r.status_code == 429 and r.headers["retry-after"]
        assert "Too many requests" in r.text and r.headers["content-type"].startswith("text/html")
        for path, status in (("/nowhere", 404), ("/site/sign-out", 405)):
            r = await client.get(path)
            assert r.status_code == status
            assert "<h1" in r.text and "Traceback" not in r.text and '"detail"' not in r.text
        assert (await client.get("/healthz")).json()["status"] == "ok"  # still JSON


def answers_counted(metrics_text: str) -> dict[tuple[str, str, str], float]:
    """`ibest_forms_responses_total` as /metrics says it, by (method, page, status)."""
    return {
        (labels["method"], labels["page"], labels["status"]): value
        for labels, value in metric_samples(metrics_text, "ibest_forms_responses_total")
    }


async def test_every_page_answer_is_counted_by_template_never_by_link(forms: str) -> None:
    """Operators see forms refused and failing on /metrics: each answer counted under the
    route's template and its status; the link itself (a credential) is never a label."""
    async with httpx.AsyncClient(base_url=forms) as client:
        before = answers_counted((await client.get("/metrics")).text)
        for _ in range(2):
            assert (await client.get("/c/f1.forged")).status_code == 403
        assert (await client.get("/")).status_code == 200
        metrics_text = (await client.get("/metrics")).text
    after = answers_counted(metrics_text)

    def moved(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert moved(("GET", "/c/{token}", "403")) == 2
    assert moved(("GET", "/", "200")) == 1
    assert "f1.forged" not in metrics_text


async def test_oversized_and_tokenless_posts_and_expired_sessions(
    forms: str, settings: Settings, forms_settings: FormsSettings
) -> None:
    async with bootstrap.admin(settings, forms_settings) as (keys, _):
        _, key = await keys.create("RTH08")
    async with httpx.AsyncClient(base_url=forms) as client:
        auth = await sign_in(client, key)
        page = await client.get("/site", headers=auth)
        big = await client.post(
            "/site/patients", data={**hidden(page.text), "pad": "x" * 20_000}, headers=auth
        )
        assert big.status_code == 403 and "This form has expired" in big.text
        other = await client.post(
            "/site/patients", data={**hidden(page.text), "csrf": "0" * 64}, headers=auth
        )
        assert other.status_code == 403
        # A token from another session does not pass either.
        second = await sign_in(client, key)
        stolen = await client.post("/site/patients", data=hidden(page.text), headers=second)
        assert stolen.status_code == 403
        out = await client.post("/site/sign-out", data=hidden(page.text), headers=auth)
        assert out.status_code == 200 and "You have signed out" in out.text
        assert (await client.get("/site", headers=auth)).status_code == 303


async def test_a_session_expires(
    strict_forms: str, settings: Settings, forms_settings: FormsSettings
) -> None:
    async with bootstrap.admin(settings, forms_settings) as (keys, _):
        _, key = await keys.create("RTH08")
    async with httpx.AsyncClient(base_url=strict_forms) as client:
        auth = await sign_in(client, key)
        assert (await client.get("/site", headers=auth)).status_code == 200
        NOW[0] += timedelta(minutes=2)
        try:
            assert (await client.get("/site", headers=auth)).status_code == 303
        finally:
            NOW[0] = datetime.now(UTC)


async def test_every_site_team_route_sends_a_visitor_without_a_live_session_to_sign_in(
    forms: str, settings: Settings, forms_settings: FormsSettings
) -> None:
    """The one signed-in check (`api.site_team`) guards every site-team route: with no
    session cookie, a made-up one or a signed-out one, each answers the sign-in redirect
    before reading the form (a route added without the check fails here)."""
    guarded = sorted(
        (method, route.path)
        for route in routes().routes
        if isinstance(route, APIRoute)
        and route.path.startswith("/site")
        and route.path != "/site/sign-in"
        for method in route.methods or ()
    )
    assert guarded == [
        ("GET", "/site"),
        ("GET", "/site/entry"),
        ("GET", "/site/link"),
        ("POST", "/site/entry"),
        ("POST", "/site/letter"),
        ("POST", "/site/link"),
        ("POST", "/site/patients"),
        ("POST", "/site/sign-out"),
    ]
    async with bootstrap.admin(settings, forms_settings) as (keys, _):
        _, key = await keys.create("RTH08")
    async with httpx.AsyncClient(base_url=forms) as client:
        auth = await sign_in(client, key)
        home = await client.get("/site", headers=auth)
        assert home.status_code == 200
        out = await client.post("/site/sign-out", data=hidden(home.text), headers=auth)
        assert out.status_code == 200
        for cookie in ({}, {"Cookie": "ibest_forms_session=made-up"}, auth):
            for method, path in guarded:
                r = await client.request(method, path, data=hidden(home.text), headers=cookie)
                assert (r.status_code, r.headers.get("location")) == (303, "/site/sign-in"), (
                    method,
                    path,
                    cookie,
                )
                assert r.headers["cache-control"] == "no-store"
