"""HTTP routes: each reads the request, calls one use case and renders its page; nothing
more. Every POST carries a CSRF token bound to its credential (the link, or the site
team's session); every page carries the headers of `pages.HEADERS`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.forms.adapters import metrics
from services.forms.application import PatientVisit, Recorded, Refused, Why
from services.forms.bootstrap import FormsParts
from services.forms.domain import answers, questionnaire
from services.forms.domain.access import csrf_ok, csrf_token, new_nonce, new_session_token
from services.forms.letters import letter_pdf, qr_svg
from services.forms.pages import STATIC, VENDORED_CSS, page, problem_page
from services.forms.ports import Session
from shared.instruments import INSTRUMENTS
from shared.links import ClinicianForm
from shared.measures import Measure

log = logging.getLogger(__name__)
T = TypeVar("T")
SESSION_COOKIE = "ibest_forms_session"
PRE_COOKIE = "ibest_forms_signin"
MAX_FORM_BYTES = 16_384
TIMEPOINT_LABELS = {
    "baseline": "Baseline (before the first group session)",
    "group_end": "End of the group programme",
    "month_3": "3 months",
    "month_12": "12 months",
}


class PageRoute(APIRoute):
    """Any failure inside a page becomes a plain-English page, never a stack trace; a
    site-team route asked for without a session (`site_team`) redirects to the sign-in; a
    page answered early (`Answered`: over the rate, a refused link, an expired form) gets
    that answer. Every answer is counted (`adapters.metrics`: by the route's template,
    never the link)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            response = await self._answer(inner, request)
            metrics.answered(request.method, self.path, response.status_code)
            return response

        return handler

    async def _answer(
        self, inner: Callable[[Request], Coroutine[Any, Any, Response]], request: Request
    ) -> Response:
        try:
            return await inner(request)
        except Answered as answered:
            return answered.response
        except NotSignedIn:
            return to_sign_in()
        except Exception as exc:
            # The type only: a message may quote what was typed into the form.
            log.error("forms: %s %s failed: %s", request.method, self.path, type(exc).__name__)
            return problem_page(
                500,
                "Sorry, there is a problem with the service",
                "Try again later. Your answers have not been sent.",
            )


def parts(request: Request) -> FormsParts:
    service: FormsParts = request.app.state.service
    return service


class NotSignedIn(Exception):
    """A site-team page was asked for without a live session: `PageRoute` answers it with
    the sign-in page."""


@dataclass(frozen=True)
class SiteTeam:
    """The signed-in site team of a request: its session and the session's token (the
    credential its forms' CSRF tokens are bound to)."""

    session: Session
    token: str


async def site_team(request: Request) -> SiteTeam:
    """The one signed-in check of every site-team route (a FastAPI dependency): the session
    cookie's live session, or `NotSignedIn`."""
    token = request.cookies.get(SESSION_COOKIE)
    session = await parts(request).sites.session(token)
    if session is None or not token:
        raise NotSignedIn
    return SiteTeam(session, token)


SignedIn = Annotated[SiteTeam, Depends(site_team)]


def to_sign_in() -> Response:
    return RedirectResponse("/site/sign-in", 303, headers={"Cache-Control": "no-store"})


async def form_fields(request: Request) -> dict[str, str] | None:
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        return None
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def limited(request: Request, *keys: str) -> bool:
    """True when this client (or this link) is over its rate."""
    p = parts(request)
    client = request.client.host if request.client else "unknown"
    return not all(p.limiter.allow(k) for k in (f"client:{client}", *keys))


TOO_MANY = (429, "Too many requests", "Please wait a few seconds and try again.")
BAD_FORM = (403, "This form has expired", "Go back, reload the page and try again.")


def csrf_fields(request: Request, credential: str) -> dict[str, Any]:
    nonce = new_nonce()
    return {"nonce": nonce, "csrf": csrf_token(parts(request).keys.csrf_key, credential, nonce)}


def csrf_valid(request: Request, credential: str, fields: dict[str, str]) -> bool:
    return csrf_ok(
        parts(request).keys.csrf_key, credential, fields.get("nonce", ""), fields.get("csrf", "")
    )


class Answered(Exception):
    """A page's answer, decided before its route finished (the checks below): `PageRoute`
    sends it."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def within_link_rate(request: Request, token: str) -> None:
    """This client and this link are within their rates, else the 429 page."""
    if limited(request, f"link:{token[:64]}"):
        raise Answered(problem_page(*TOO_MANY))


async def posted(request: Request, credential: str) -> dict[str, str]:
    """The posted form's fields, bound to `credential` by its CSRF token, else the page that
    says the form has expired."""
    fields = await form_fields(request)
    if fields is None or not credential or not csrf_valid(request, credential, fields):
        raise Answered(problem_page(*BAD_FORM))
    return fields


def granted(result: T | Refused) -> T:
    """A use case's result, or its refusal answered as a page."""
    if isinstance(result, Refused):
        raise Answered(refused(result))
    return result


STATUS_OF_REFUSAL = {Why.FORBIDDEN: 403, Why.NOT_FOUND: 404, Why.CLOSED: 410, Why.INVALID: 422}
"""The HTTP status of each refusal of the use cases: the edge's, and only here."""


def refused(r: Refused) -> HTMLResponse:
    return problem_page(STATUS_OF_REFUSAL[r.why], r.title, r.message)


def routes() -> APIRouter:
    router = APIRouter(route_class=PageRoute, include_in_schema=False)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        path = VENDORED_CSS if name == "nhsuk.css" else STATIC / name
        if name not in ("nhsuk.css", "forms.css") or not path.is_file():
            return problem_page(404, "Page not found", "If you typed the web address, check it.")
        return FileResponse(path, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @router.get("/")
    async def start(request: Request) -> HTMLResponse:
        return page("start.html")

    # --- clinicians -------------------------------------------------------------------

    @router.get("/c/{token}")
    async def clinician_form(request: Request, token: str) -> HTMLResponse:
        within_link_rate(request, token)
        opened = granted(await parts(request).clinicians.open(token))
        return clinician_page(request, token, opened.claims.form, {}, answers.Problems())

    @router.post("/c/{token}")
    async def clinician_submit(request: Request, token: str) -> HTMLResponse:
        within_link_rate(request, token)
        fields = await posted(request, token)
        result = granted(await parts(request).clinicians.submit(token, fields, fields["nonce"]))
        if isinstance(result, answers.Problems):
            opened = granted(await parts(request).clinicians.open(token))
            return clinician_page(request, token, opened.claims.form, fields, result, 422)
        return page("clinician_done.html", title="Thank you, your answer has been sent")

    def clinician_page(
        request: Request,
        token: str,
        form: ClinicianForm,
        values: dict[str, str],
        problems: answers.Problems,
        status: int = 200,
    ) -> HTMLResponse:
        template = "intention.html" if form == ClinicianForm.INTENTION else "delivery.html"
        survey = "4-month" if form == ClinicianForm.DELIVERY_MONTH_4 else "12-month"
        return page(
            template,
            status,
            action=f"/c/{token}",
            values=values,
            errors=problems.by_field,
            survey=survey,
            **csrf_fields(request, token),
        )

    # --- site teams -------------------------------------------------------------------

    @router.get("/site/sign-in")
    async def sign_in_page(request: Request) -> HTMLResponse:
        return sign_in_form(request, {}, answers.Problems())

    def sign_in_form(
        request: Request, values: dict[str, str], problems: answers.Problems, status: int = 200
    ) -> HTMLResponse:
        pre = new_session_token()
        response = page(
            "sign_in.html", status, errors=problems.by_field, **csrf_fields(request, pre)
        )
        set_cookie(request, response, PRE_COOKIE, pre, 1800)
        return response

    @router.post("/site/sign-in")
    async def sign_in(request: Request) -> Response:
        if limited(request):
            return problem_page(*TOO_MANY)
        fields = await posted(request, request.cookies.get(PRE_COOKIE, ""))
        signed = await parts(request).sites.sign_in(fields.get("key", ""))
        if signed is None:
            problems = answers.Problems()
            problems.add("key", "Enter a valid site key. Ask your iBeST contact if it has expired")
            return sign_in_form(request, {}, problems, 422)
        response = RedirectResponse("/site", 303, headers={"Cache-Control": "no-store"})
        minutes = parts(request).settings.session_minutes
        set_cookie(request, response, SESSION_COOKIE, signed.token, int(minutes * 60))
        response.delete_cookie(PRE_COOKIE, path="/site/sign-in")
        return response

    def set_cookie(
        request: Request, response: Response, name: str, value: str, max_age: int
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/site/sign-in" if name == PRE_COOKIE else "/site",
            secure=parts(request).settings.cookie_secure,
            httponly=True,
            samesite="strict",
        )

    @router.post("/site/sign-out")
    async def sign_out(request: Request, team: SignedIn) -> Response:
        await posted(request, team.token)  # the CSRF check: nothing else is read
        await parts(request).sites.sign_out(team.token)
        response = page("signed_out.html")
        response.delete_cookie(SESSION_COOKIE, path="/site")
        return response

    @router.get("/site")
    async def site_home(request: Request, team: SignedIn) -> Response:
        rows = await parts(request).sites.follow_ups(team.session)
        return page(
            "site_home.html",
            site=team.session.site,
            rows=rows,
            labels=TIMEPOINT_LABELS,
            **csrf_fields(request, team.token),
        )

    @router.post("/site/patients")
    async def add_patient(request: Request, team: SignedIn) -> Response:
        await posted(request, team.token)  # the CSRF check: nothing else is read
        patient = await parts(request).sites.add_patient(team.session)
        return page("patient_added.html", site=team.session.site, ref=patient.patient_ref)

    @router.get("/site/entry")
    async def entry_page(request: Request, team: SignedIn) -> Response:
        values = {"patient_ref": request.query_params.get("patient", "")[:64]}
        return entry_form(request, team, values, answers.Problems())

    def site_form(
        template: str,
        measures: Iterable[Measure],
        request: Request,
        team: SiteTeam,
        values: dict[str, str],
        problems: answers.Problems,
        status: int = 200,
    ) -> HTMLResponse:
        """A site team's form about one patient (a paper entry, a patient link), with the
        measures it offers, the values so far and what is wrong with them."""
        return page(
            template,
            status,
            site=team.session.site,
            values=values,
            errors=problems.by_field,
            labels=TIMEPOINT_LABELS,
            measures=[(m.value, INSTRUMENTS[m].name) for m in measures],
            **csrf_fields(request, team.token),
        )

    def entry_form(
        request: Request,
        team: SiteTeam,
        values: dict[str, str],
        problems: answers.Problems,
        status: int = 200,
    ) -> HTMLResponse:
        return site_form("entry.html", INSTRUMENTS, request, team, values, problems, status)

    @router.post("/site/entry")
    async def entry(request: Request, team: SignedIn) -> Response:
        fields = await posted(request, team.token)
        result = await parts(request).sites.enter_paper(
            team.session,
            fields.get("patient_ref", ""),
            fields.get("timepoint", ""),
            fields,
            fields["nonce"],
        )
        if isinstance(result, Refused):
            if result.why is Why.INVALID:
                problems = answers.Problems()
                problems.add("patient_ref", result.message)
                return entry_form(request, team, fields, problems, 422)
            return refused(result)
        if isinstance(result, answers.Problems):
            return entry_form(request, team, fields, result, 422)
        return page(
            "entry_done.html",
            site=team.session.site,
            ref=fields.get("patient_ref", "").strip(),
            timepoint=TIMEPOINT_LABELS.get(fields.get("timepoint", ""), ""),
        )

    @router.get("/site/link")
    async def link_page(request: Request, team: SignedIn) -> Response:
        values = {"patient_ref": request.query_params.get("patient", "")[:64]}
        return link_form(request, team, values, answers.Problems())

    def link_form(
        request: Request,
        team: SiteTeam,
        values: dict[str, str],
        problems: answers.Problems,
        status: int = 200,
    ) -> HTMLResponse:
        return site_form(
            "link.html",
            questionnaire.SELF_COMPLETABLE,
            request,
            team,
            values,
            problems,
            status,
        )

    @router.post("/site/link")
    async def create_link(request: Request, team: SignedIn) -> Response:
        form = (
            await request.form()
            if request.headers.get("content-length", "0").isdigit()
            and int(request.headers.get("content-length", "0")) <= MAX_FORM_BYTES
            else None
        )
        if form is None:
            return problem_page(*BAD_FORM)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not csrf_valid(request, team.token, fields):
            return problem_page(*BAD_FORM)
        measures = [v for v in form.getlist("measures") if isinstance(v, str)]
        result = await parts(request).sites.create_link(
            team.session, fields.get("patient_ref", ""), fields.get("timepoint", ""), measures
        )
        if isinstance(result, Refused):
            if result.why is Why.INVALID:
                problems = answers.Problems()
                problems.add("patient_ref", result.message)
                return link_form(request, team, fields, problems, 422)
            return refused(result)
        url = f"{parts(request).settings.base_url.rstrip('/')}/p/{result.token}"
        return page(
            "link_made.html",
            site=team.session.site,
            url=url,
            qr=qr_svg(url),
            link=result.link,
            timepoint=TIMEPOINT_LABELS[result.link.timepoint],
            token=result.token,
            **csrf_fields(request, team.token),
        )

    @router.post("/site/letter")
    async def letter(request: Request, team: SignedIn) -> Response:
        fields = await posted(request, team.token)
        visit = granted(await parts(request).patients.open(fields.get("token", "")))
        if visit.link.site != team.session.site:
            return problem_page(404, "Patient not found", "This link is not your site's.")
        url = f"{parts(request).settings.base_url.rstrip('/')}/p/{fields['token']}"
        pdf = await asyncio.to_thread(letter_pdf, url, visit.link.closes)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": 'attachment; filename="questionnaire-letter.pdf"',
                "Cache-Control": "no-store",
            },
        )

    # --- patients ---------------------------------------------------------------------

    @router.get("/p/{token}")
    async def patient_start(request: Request, token: str) -> Response:
        within_link_rate(request, token)
        visit = granted(await parts(request).patients.open(token))
        return page("patient_start.html", token=token, first=visit.steps[0].step_id)

    @router.get("/p/{token}/q/{step_id}")
    async def patient_question(request: Request, token: str, step_id: str) -> Response:
        within_link_rate(request, token)
        visit = granted(await parts(request).patients.open(token))
        step = next((s for s in visit.steps if s.step_id == step_id), None)
        if step is None:
            return problem_page(404, "Page not found", "This question is not part of your form.")
        saved = visit.link.draft.get("answers", {}).get(step_id)
        return question_page(request, token, visit.steps, step, saved, answers.Problems())

    def question_page(
        request: Request,
        token: str,
        steps: list[questionnaire.Step],
        step: questionnaire.Step,
        saved: Any,
        problems: answers.Problems,
        status: int = 200,
    ) -> HTMLResponse:
        index = [s.step_id for s in steps].index(step.step_id)
        back = f"/p/{token}/q/{steps[index - 1].step_id}" if index else f"/p/{token}"
        return page(
            "question.html",
            status,
            step=step,
            saved=saved,
            number=index + 1,
            errors=problems.by_field,
            action=f"/p/{token}/q/{step.step_id}",
            back=back,
            **csrf_fields(request, token),
        )

    @router.post("/p/{token}/q/{step_id}")
    async def patient_answer(request: Request, token: str, step_id: str) -> Response:
        within_link_rate(request, token)
        fields = await posted(request, token)
        result = granted(await parts(request).patients.answer(token, step_id, fields))
        if isinstance(result, answers.Problems):
            visit = granted(await parts(request).patients.open(token))
            step = next(s for s in visit.steps if s.step_id == step_id)
            return question_page(request, token, visit.steps, step, fields, result, 422)
        assert isinstance(result, PatientVisit)
        answered = result.link.draft.get("answers", {})
        following = next((s for s in result.steps if s.step_id not in answered), None)
        target = f"/p/{token}/q/{following.step_id}" if following else f"/p/{token}/check"
        return RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})

    @router.get("/p/{token}/check")
    async def patient_check(request: Request, token: str) -> Response:
        visit = granted(await parts(request).patients.open(token))
        saved = visit.link.draft.get("answers", {})
        rows = [(s, saved.get(s.step_id), f"/p/{token}/q/{s.step_id}") for s in visit.steps]
        return page(
            "check.html",
            rows=rows,
            complete=all(s.step_id in saved for s in visit.steps),
            action=f"/p/{token}/send",
            **csrf_fields(request, token),
        )

    @router.post("/p/{token}/send")
    async def patient_send(request: Request, token: str) -> Response:
        within_link_rate(request, token)
        fields = await posted(request, token)
        result = granted(await parts(request).patients.submit(token, fields["nonce"]))
        assert isinstance(result, Recorded)
        return page("patient_done.html")

    return router


def error_pages(app: FastAPI) -> None:
    """Unknown paths and methods get the plain-English page too, never FastAPI's JSON."""

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        if status == 404:
            return problem_page(404, "Page not found", "If you typed the web address, check it.")
        if status == 405:
            return problem_page(405, "Page not found", "Go back and try again.")
        return problem_page(
            status, "Sorry, there is a problem with the service", "Try again later."
        )

    app.add_exception_handler(StarletteHTTPException, on_http_error)
