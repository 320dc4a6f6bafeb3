"""Clinicians answer by signed link, through the real forms service over real NATS and the
database: the answer is one `clinician.delivery_reported` / `intention_reported` in the
stream; forged, altered and revoked links get 403, closed windows 410, and nothing is
stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.forms import bootstrap
from services.forms.settings import FormsSettings
from shared.links import ClinicianForm
from tests.forms.conftest import hidden, path_of
from tests.harness import cloud_event, publish_raw, stream_events, wait_for

REF = "c0ffee0123456789abcdef0123456789"


async def completed(js: JetStreamContext, days_ago: int, ref: str = REF) -> None:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    await publish_raw(
        js,
        cloud_event(
            "clinician.training_completed",
            {"clinician_ref": ref, "course_version": "1", "completed_at": at.isoformat()},
            time=at,
        ),
    )


async def link(settings: Settings, own: FormsSettings, form: ClinicianForm) -> str:
    async with bootstrap.admin(settings, own) as (_, links):
        return path_of(links.link(REF, form))


async def test_month_4_answer_is_one_event_and_hostile_links_are_refused(
    forms: str, js: JetStreamContext, settings: Settings, forms_settings: FormsSettings
) -> None:
    await completed(js, 122)
    month_4 = await link(settings, forms_settings, ClinicianForm.DELIVERY_MONTH_4)
    assert REF not in month_4
    async with httpx.AsyncClient(base_url=forms) as client:

        async def opened() -> httpx.Response | None:
            r = await client.get(month_4)
            return r if r.status_code == 200 else None

        page = await wait_for(opened, what="the completion reaches forms")
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        fields = hidden(page.text)

        # Out of range: refused on the page, nothing reaches the stream.
        bad = await client.post(month_4, data={**fields, "delivering": "yes", "groups": "-3"})
        assert bad.status_code == 422
        assert "There is a problem" in bad.text and "from 0 to 10000" in bad.text
        # A number too long for Python to read: refused the same way, never a 500.
        huge = await client.post(
            month_4, data={**fields, "delivering": "yes", "groups": "9" * 5000}
        )
        assert huge.status_code == 422 and "from 0 to 10000" in huge.text
        # No CSRF token: refused.
        assert (await client.post(month_4, data={"delivering": "no"})).status_code == 403

        answer = {**fields, "delivering": "yes", "groups": "3"}
        done = await client.post(month_4, data=answer)
        assert done.status_code == 200, done.text
        again = await client.post(month_4, data=answer)  # a double submit: one event
        assert again.status_code == 200

        events = await wait_for(
            lambda: stream_events(js, "clinician.delivery_reported"), what="the answer"
        )
        assert len(events) == 1
        assert events[0]["data"] == {
            "clinician_ref": REF,
            "delivering": True,
            "groups_delivered": 3,
        }
        assert events[0]["source"] == "/platform/forms"

        # A later answer is a new event (latest wins): not delivering gives 0 groups.
        fresh = hidden((await client.get(month_4)).text)
        await client.post(month_4, data={**fresh, "delivering": "no", "groups": ""})
        later = await wait_for(
            lambda: _at_least(js, "clinician.delivery_reported", 2), what="second answer"
        )
        assert later[-1]["data"]["delivering"] is False
        assert later[-1]["data"]["groups_delivered"] == 0

        # Altered and forged links: 403 with a plain page.
        token = month_4.removeprefix("/c/")
        flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
        for path in (f"/c/{flipped}", "/c/f1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/c/x"):
            r = await client.get(path)
            assert r.status_code == 403
            assert "This link does not work" in r.text and "Traceback" not in r.text

        # The month 12 survey is not open yet: 410.
        month_12 = await link(settings, forms_settings, ClinicianForm.DELIVERY_MONTH_12)
        assert (await client.get(month_12)).status_code == 410

        # Revoked: every month 4 link made so far is refused.
        async with bootstrap.admin(settings, forms_settings) as (_, links):
            await links.revoke(REF, ClinicianForm.DELIVERY_MONTH_4)
        r = await client.post(month_4, data={**hidden(page.text), "delivering": "no"})
        assert r.status_code == 403
    assert len(await stream_events(js, "clinician.delivery_reported")) == 2


async def test_intention_closes_90_days_after_completion(
    forms: str, js: JetStreamContext, settings: Settings, forms_settings: FormsSettings
) -> None:
    await completed(js, 91)
    path = await link(settings, forms_settings, ClinicianForm.INTENTION)
    async with httpx.AsyncClient(base_url=forms) as client:

        async def closed() -> httpx.Response | None:
            r = await client.get(path)
            return r if "This survey has closed" in r.text else None

        r = await wait_for(closed, what="the intention form closed")
        assert r.status_code == 410
    assert await stream_events(js, "clinician.intention_reported") == []


async def _at_least(js: JetStreamContext, name: str, n: int) -> list[dict[str, Any]] | None:
    events = await stream_events(js, name)
    return events if len(events) >= n else None
