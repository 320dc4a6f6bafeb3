"""Every form in a real browser (headless Chromium), through the real services over real
NATS and the database, with axe-core checking each page (error states included) for WCAG
2.2 A/AA violations, and every form completed with the keyboard alone.

- A clinician answers the month 4 survey by its link; `delivery_reported_month_4` rises
  in reporting (enrolment derives the completion the forms judge the window by).
- A site team signs in, enters a baseline and a 3-month paper form, creates a patient link,
  and the patient completes it; the national figures change as domain.md says.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from services.enrolment.service import SPEC as ENROLMENT
from services.forms import bootstrap
from services.forms.service import build_spec
from services.forms.settings import FormsSettings
from services.outcomes.service import SPEC as OUTCOMES
from services.reporting.service import SPEC as REPORTING
from shared.links import ClinicianForm
from tests.browser import Browser
from tests.forms.conftest import path_of
from tests.harness import cloud_event, dead_letters, publish_raw, running_service, wait_for
from tests.platform.test_end_to_end import MODULES

TOKEN = "forms-browser-raw"
REF = "feedface0123456789abcdef01234567"


@asynccontextmanager
async def platform(
    settings: Settings, own: FormsSettings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """Enrolment, outcomes, reporting and forms; yields the forms' base URL and a client of
    the reporting API."""
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    async with AsyncExitStack() as stack:
        for spec in (ENROLMENT, OUTCOMES):
            await stack.enter_async_context(running_service(spec, settings))
        reporting = await stack.enter_async_context(running_service(REPORTING, settings))
        forms = await stack.enter_async_context(running_service(build_spec(own), settings))
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"})
        )
        yield forms, api


async def accessible(browser: Browser, what: str) -> str:
    """The page's text, after axe-core found no WCAG 2.2 A/AA violation on it."""
    violations = await browser.violations()
    assert violations == [], f"{what}: {violations}"
    return await browser.text()


async def national(api: httpx.AsyncClient) -> dict[str, Any]:
    figures: dict[str, Any] = (await api.get("/v1/national")).json()["figures"]
    return figures


@pytest.mark.slow
async def test_a_clinician_answers_the_month_4_survey_and_the_figure_rises(
    settings: Settings,
    js: JetStreamContext,
    forms_settings: FormsSettings,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done = datetime.now(UTC) - timedelta(days=122)
    await publish_raw(
        js,
        cloud_event(
            "clinician.enrolled",
            {"clinician_ref": REF, "profession": "physiotherapist", "course_version": "1"},
            time=done - timedelta(days=20),
        ),
    )
    for i, module in enumerate(MODULES):
        await publish_raw(
            js,
            cloud_event(
                "module.completed",
                {"clinician_ref": REF, "module_id": module},
                time=done - timedelta(minutes=len(MODULES) - i),
            ),
        )
    async with platform(settings, forms_settings, monkeypatch) as (forms, api):
        async with bootstrap.admin(settings, forms_settings) as (_, links):
            month_4 = path_of(links.link(REF, ClinicianForm.DELIVERY_MONTH_4))
            month_12 = path_of(links.link(REF, ClinicianForm.DELIVERY_MONTH_12))

        async def due() -> dict[str, Any] | None:
            figures = await national(api)
            return figures if figures.get("delivery_survey_due_month_4") == 1 else None

        before = await wait_for(due, 60, "the completion derived and counted")
        assert before["delivery_reported_month_4"] == 0

        async def opens() -> bool:
            await browser.go(forms + month_4)
            return "Are you delivering BeST classes?" in await browser.text()

        await wait_for(opens, 30, "the forms know the completion")
        assert "4-month" in await accessible(browser, "delivery survey")
        assert await browser.fits(320), "the survey needs no sideways scrolling at 320 px"
        await browser.submit("Send answer")  # nothing chosen
        page = await accessible(browser, "delivery survey with errors")
        assert "There is a problem" in page
        assert "Select yes if you are delivering BeST classes" in page
        await browser.press_space("delivering")
        await browser.type("groups", "2")
        await browser.submit("Send answer")
        assert "Thank you, your answer has been sent" in await accessible(browser, "thanks")

        async def reported() -> dict[str, Any] | None:
            figures = await national(api)
            return figures if figures.get("delivery_reported_month_4") == 1 else None

        after = await wait_for(reported, 60, "delivery_reported_month_4 rises")
        assert after["clinicians_delivering_month_4"] == 1
        assert after["delivery_response_rate_month_4"] == 1.0

        await browser.go(forms + month_12)
        assert "This survey is not open yet" in await accessible(browser, "410 page")
        await browser.go(forms + month_4[:-4] + "AAAA")
        assert "This link does not work" in await accessible(browser, "403 page")
        await browser.go(forms + "/")
        await accessible(browser, "start page")
    assert await dead_letters(js) == []


@pytest.mark.slow
async def test_a_site_team_and_a_patient_record_outcomes_and_the_figures_change(
    settings: Settings,
    js: JetStreamContext,
    forms_settings: FormsSettings,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # what the services log in production (serve.py)
    async with bootstrap.admin(settings, forms_settings) as (keys, _):
        _, key = await keys.create("RTH08")
    today = datetime.now(UTC)
    async with platform(settings, forms_settings, monkeypatch) as (forms, api):
        await browser.go(forms + "/site")  # not signed in: the sign-in page
        await browser.type("key", "ibs_not-a-key")
        await browser.submit("Sign in")
        assert "Enter a valid site key" in await accessible(browser, "sign-in error")
        await browser.type("key", key)
        await browser.submit("Sign in")
        assert "Site RTH08" in await accessible(browser, "site home")

        async def add_patient() -> str:
            await browser.go(forms + "/site")
            await browser.submit("Add a patient")
            text = await accessible(browser, "patient added")
            found = re.search(r"\b(FP-[A-Z0-9]{10})\b", text)
            assert found, text
            return found.group(1)

        async def paper(ref: str, timepoint: str, day: datetime, **totals: str) -> str:
            await browser.go(forms + "/site/entry")
            await accessible(browser, "paper form")
            await browser.type("patient_ref", ref)
            await browser.press_space(
                "timepoint" if timepoint == "baseline" else f"timepoint-{timepoint}"
            )
            await browser.type("completed-day", str(day.day))
            await browser.type("completed-month", str(day.month))
            await browser.type("completed-year", str(day.year))
            for measure, value in totals.items():
                await browser.type(measure, value)
            await browser.submit("Save the form")
            return await accessible(browser, f"paper {timepoint} result")

        await browser.go(forms + "/site/entry")
        assert await browser.fits(320), "the paper form needs no sideways scrolling at 320 px"
        first = await add_patient()
        refused = await paper("9434765919", "baseline", today, rmdq="12")
        assert "This is an NHS number" in refused
        assert "Form saved" in await paper(first, "baseline", today - timedelta(days=95), rmdq="12")
        out_of_range = await paper(first, "month_3", today - timedelta(days=1), rmdq="30")
        assert "There is a problem" in out_of_range and "must be from 0 to 24" in out_of_range
        assert "Form saved" in await paper(first, "month_3", today - timedelta(days=1), rmdq="6")

        second = await add_patient()
        saved = await paper(second, "baseline", today - timedelta(days=91), pain_nrs="8")
        assert "Form saved" in saved
        await browser.go(forms + "/site")
        assert second in await accessible(browser, "follow-ups due")

        await browser.go(forms + "/site/link")
        await accessible(browser, "link form")
        await browser.type("patient_ref", second)
        await browser.press_space("timepoint-month_3")
        await browser.press_space("measures-von_korff_pain")  # untick: pain NRS and PSFS
        await browser.submit("Create the link")
        await accessible(browser, "link made")
        source = await browser.source()
        link = re.search(r'href="http://forms\.test(/p/[^"]+)"', source)
        assert link and "<svg" in source
        patient_url = forms + link.group(1)

        # The patient, on their own device: no site-team cookie.
        browser.driver.delete_all_cookies()
        await browser.go(patient_url)
        await accessible(browser, "patient start")
        await browser.submit("Start now")
        assert await browser.fits(320), "a question needs no sideways scrolling at 320 px"
        await browser.submit("Continue")  # nothing chosen
        assert "Enter your answer" in await accessible(browser, "question error")
        await browser.press_space("answer-4")
        await browser.submit("Continue")
        assert "everyday activities" in await accessible(browser, "PSFS activities")
        await browser.type("activity-1", "Putting on socks")
        await browser.submit("Continue")
        assert "at least 3 activities" in await accessible(browser, "PSFS activities error")
        await browser.type("activity-2", "Walking to the shops")
        await browser.type("activity-3", "Lifting my grandchild")
        await browser.submit("Continue")
        for rating in ("answer-3", "answer-5", "answer-7"):
            await accessible(browser, "PSFS rating")
            await browser.press_space(rating)
            await browser.submit("Continue")
        check = await accessible(browser, "check answers")
        assert "Check your answers before sending" in check and "Putting on socks" in check
        await browser.submit("Send my answers")
        assert "Your answers have been sent" in await accessible(browser, "patient done")
        await browser.go(patient_url)
        assert "already sent" in await accessible(browser, "410 page")

        # The intention form, its error state, sign-out and a missing page, checked too.
        done = datetime.now(UTC) - timedelta(days=10)
        await publish_raw(
            js,
            cloud_event(
                "clinician.training_completed",
                {"clinician_ref": REF, "course_version": "1", "completed_at": done.isoformat()},
                time=done,
            ),
        )
        async with bootstrap.admin(settings, forms_settings) as (_, links):
            intention = path_of(links.link(REF, ClinicianForm.INTENTION))

        async def opens() -> bool:
            await browser.go(forms + intention)
            return "Do you intend to deliver BeST classes?" in await browser.text()

        await wait_for(opens, 30, "the intention form opens")
        await accessible(browser, "intention form")
        await browser.type("confidence", "11")
        await browser.submit("Send answer")
        page = await accessible(browser, "intention form with errors")
        assert "Select yes if you intend" in page and "from 0 to 10" in page
        await browser.press_space("intends")
        await browser.type("confidence", "8")
        await browser.submit("Send answer")
        assert "Thank you" in await accessible(browser, "intention sent")
        await browser.go(forms + "/nowhere")
        assert "Page not found" in await accessible(browser, "404 page")
        await browser.go(forms + "/site/sign-in")
        await browser.type("key", key)
        await browser.submit("Sign in")
        await browser.submit("Sign out")
        assert "You have signed out" in await accessible(browser, "signed out")

        async def counted() -> dict[str, Any] | None:
            figures = await national(api)
            ready = figures.get("patients_month_3") == 2
            pain = figures.get("outcomes", {}).get("pain_nrs", {}).get("month_3", {})
            return figures if ready and pain.get("n") == 1 else None

        figures = await wait_for(counted, 60, "the forms' assessments counted")
        assert figures["patients_baseline"] == 2
        assert figures["followup_due_month_3"] == 2
        assert figures["followup_rate_month_3"] == 1.0
        assert figures["outcomes"]["rmdq"]["month_3"]["n"] == 1
        assert figures["outcomes"]["rmdq"]["month_3"]["mean_change"] == -6
        assert figures["outcomes"]["pain_nrs"]["month_3"]["mean_change"] == -4
    assert await dead_letters(js) == []
    # Nothing identifying or free text in any service's log: not the NHS number typed, not
    # the patient's activity names, not the site key.
    # (The browser driver's own debug log, which records what it types, is not ours.)
    ours = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("selenium", "urllib3"))
    )
    assert "forms" in ours or "service started" in ours  # the services' lines are here
    for secret in ("9434765919", "Putting on socks", "Lifting my grandchild", key):
        assert secret not in ours
