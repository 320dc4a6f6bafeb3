"""Site teams and patients through the real forms service over real NATS and the database:
sign in with a site key, add a patient, enter a paper baseline and a 3-month form, make a
patient link that the patient completes; only scores reach the stream. Hostile use: an NHS
number as patient_ref, another site's patient, a missing CSRF token, a date in the future,
a revoked key."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.forms import bootstrap
from services.forms.settings import FormsSettings
from tests.forms.conftest import hidden
from tests.harness import stream_events, wait_for

REF = re.compile(r'<p class="app-reference"><strong>(FP-[A-Z0-9]+)</strong>')
LINK = re.compile(r'href="http://forms.test(/p/[^"]+)"')


async def sign_in(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    """Signs in; returns the Cookie header (the cookie is Secure, so httpx would not send
    it over the test's plain HTTP by itself)."""
    page = await client.get("/site/sign-in")
    pre = page.cookies["ibest_forms_signin"]
    r = await client.post(
        "/site/sign-in",
        data={**hidden(page.text), "key": key},
        headers={"Cookie": f"ibest_forms_signin={pre}"},
    )
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    return {"Cookie": cookie.split(";")[0]}


def paper(fields: dict[str, str], ref: str, timepoint: str, day: datetime, **totals: str) -> Any:
    return {
        **fields,
        "patient_ref": ref,
        "timepoint": timepoint,
        "completed-day": str(day.day),
        "completed-month": str(day.month),
        "completed-year": str(day.year),
        **totals,
    }


async def test_site_team_enters_forms_and_a_patient_completes_a_link(
    forms: str, js: JetStreamContext, settings: Settings, forms_settings: FormsSettings
) -> None:
    async with bootstrap.admin(settings, forms_settings) as (keys, _):
        key_id, key = await keys.create("RTH08")
        _, other = await keys.create("RTH02")
    async with httpx.AsyncClient(base_url=forms) as client:
        assert (await client.get("/site")).status_code == 303  # not signed in
        bad = await client.get("/site/sign-in")
        wrong = await client.post(
            "/site/sign-in",
            data={**hidden(bad.text), "key": "ibs_000000000000_" + "x" * 43},
            headers={"Cookie": f"ibest_forms_signin={bad.cookies['ibest_forms_signin']}"},
        )
        assert wrong.status_code == 422 and "Enter a valid site key" in wrong.text

        auth = await sign_in(client, key)
        home = await client.get("/site", headers=auth)
        assert home.status_code == 200 and "Site RTH08" in home.text
        added = await client.post("/site/patients", data=hidden(home.text), headers=auth)
        ref = REF.search(added.text)
        assert ref, added.text
        patient = ref.group(1)
        assert not patient.replace("-", "").isdigit()

        form = hidden((await client.get("/site/entry", headers=auth)).text)
        today = datetime.now(UTC)
        baseline_day = today - timedelta(days=95)
        # An NHS number as patient_ref: refused with the contract's reason, nothing stored.
        nhs = await client.post(
            "/site/entry",
            data=paper(form, "943 476 5919", "baseline", baseline_day, rmdq="12"),
            headers=auth,
        )
        assert nhs.status_code == 422 and "This is an NHS number" in nhs.text
        # Out of range and in the future: refused on the page.
        bad_entry = await client.post(
            "/site/entry",
            data=paper(form, patient, "baseline", today + timedelta(days=2), rmdq="25"),
            headers=auth,
        )
        assert bad_entry.status_code == 422
        assert "must be from 0 to 24" in bad_entry.text, re.findall(
            r"<li><a[^<]*</a>", bad_entry.text
        )
        assert "today or in the past" in bad_entry.text
        # A mistyped forms reference is not a new patient; the right one in lower case is.
        typo = "FP-" + ("A" if patient[3] != "A" else "B") + patient[4:]
        mistyped = await client.post(
            "/site/entry", data=paper(form, typo, "baseline", today, rmdq="5"), headers=auth
        )
        assert mistyped.status_code == 404 and "Patient not found" in mistyped.text
        lower = await client.get(f"/site/link?patient={patient.lower()}", headers=auth)
        assert lower.status_code == 200
        # A day of 30 digits: not a real date, never a 500.
        long_day = await client.post(
            "/site/entry",
            data={**paper(form, patient, "baseline", today, rmdq="5"), "completed-day": "9" * 30},
            headers=auth,
        )
        assert long_day.status_code == 422 and "must be a real date" in long_day.text
        # A 3-month form before any baseline: refused.
        early = await client.post(
            "/site/entry",
            data=paper(form, patient, "month_3", today - timedelta(days=3), rmdq="8"),
            headers=auth,
        )
        assert early.status_code == 422 and "baseline form first" in early.text
        # No CSRF token: refused.
        no_csrf = await client.post(
            "/site/entry",
            data=paper({}, patient, "baseline", baseline_day, rmdq="12"),
            headers=auth,
        )
        assert no_csrf.status_code == 403

        ok = await client.post(
            "/site/entry",
            data=paper(form, patient, "baseline", baseline_day, rmdq="12", pain_nrs="7"),
            headers=auth,
        )
        assert ok.status_code == 200, ok.text
        form = hidden((await client.get("/site/entry", headers=auth)).text)
        three = await client.post(
            "/site/entry",
            data=paper(form, patient, "month_3", today - timedelta(days=1), rmdq="6"),
            headers=auth,
        )
        assert three.status_code == 200, three.text

        # Another site's team cannot touch this patient.
        other_auth = await sign_in(client, other)
        other_form = hidden((await client.get("/site/entry", headers=other_auth)).text)
        theirs = await client.post(
            "/site/entry",
            data=paper(other_form, patient, "month_3", today, rmdq="3"),
            headers=other_auth,
        )
        assert theirs.status_code == 404

        # A patient link for month 3 of a new patient with a baseline 91 days ago.
        home = await client.get("/site", headers=auth)
        second = REF.search(
            (await client.post("/site/patients", data=hidden(home.text), headers=auth)).text
        )
        assert second
        form = hidden((await client.get("/site/entry", headers=auth)).text)
        await client.post(
            "/site/entry",
            data=paper(form, second.group(1), "baseline", today - timedelta(days=91), pain_nrs="8"),
            headers=auth,
        )
        link_form = hidden((await client.get("/site/link", headers=auth)).text)
        made = await client.post(
            "/site/link",
            data={
                **link_form,
                "patient_ref": second.group(1),
                "timepoint": "month_3",
                "measures": ["pain_nrs", "von_korff_pain"],
            },
            headers=auth,
        )
        assert made.status_code == 200, made.text
        assert "<svg" in made.text
        token = re.search(r'name="token" value="([^"]+)"', made.text)
        assert token
        letter = await client.post(
            "/site/letter", data={**hidden(made.text), "token": token.group(1)}, headers=auth
        )
        assert letter.status_code == 200 and letter.content.startswith(b"%PDF")
        match = LINK.search(made.text)
        assert match
        path = match.group(1)

        # The patient answers, one question per page, then checks and sends.
        start = await client.get(path)
        assert start.status_code == 200 and start.headers["cache-control"] == "no-store"
        question = re.search(r'href="(/p/[^"]+/q/[^"]+)"', start.text)
        assert question
        url = question.group(1)
        for value in ("4", "5", "9", "6"):
            page = await client.get(url)
            assert page.status_code == 200
            for bad_answer in ("11", "9" * 5000):  # out of range, however long: never a 500
                out_of_range = await client.post(
                    url, data={**hidden(page.text), "answer": bad_answer}
                )
                assert out_of_range.status_code == 422
            r = await client.post(url, data={**hidden(page.text), "answer": value})
            assert r.status_code == 303
            url = r.headers["location"]
        assert url.endswith("/check")
        check = await client.get(url)
        assert "Check your answers" in check.text
        sent = await client.post(url.replace("/check", "/send"), data=hidden(check.text))
        assert sent.status_code == 200, sent.text
        assert (await client.get(path)).status_code == 410  # already sent

        # A revoked key ends its sessions at once.
        async with bootstrap.admin(settings, forms_settings) as (keys, _):
            await keys.revoke(key_id.key_id)
        assert (await client.get("/site", headers=auth)).status_code == 303

    async def four() -> list[dict[str, Any]] | None:
        found = await stream_events(js, "patient.assessed")
        return found if len(found) >= 4 else None

    events = await wait_for(four, what="four patient.assessed")
    by = {(e["data"]["patient_ref"], e["data"]["timepoint"]): e for e in events}
    assert by[(patient, "baseline")]["data"]["measures"] == {"rmdq": 12, "pain_nrs": 7}
    assert by[(patient, "baseline")]["time"].endswith("T12:00:00+01:00") or by[
        (patient, "baseline")
    ]["time"].endswith("T12:00:00+00:00")
    assert by[(patient, "month_3")]["data"]["measures"] == {"rmdq": 6}
    # Pain NRS 4; Von Korff 10 x mean(5, 9, 6) = 66.67: only scores, never item answers.
    assert by[(second.group(1), "month_3")]["data"]["measures"] == {
        "pain_nrs": 4,
        "von_korff_pain": 66.67,
    }
    assert all(e["sitecode"] == "RTH08" for e in events)
