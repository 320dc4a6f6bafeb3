"""xAPI statements over real HTTP, NATS and the database: a course-platform key (Bearer or
Basic) sends statements, all or nothing; a trust key is refused; re-sent statements are
duplicates; a conflicting id is 409; ignored statements are acknowledged, counted and
listed; and statements give the same figures as the equivalent CSV import."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from ibest.backbone.settings import Settings
from ibest.backbone.streams import DEADLETTER_STREAM, EVENTS_STREAM, ensure_streams
from ibest.cli import build_parser
from ibest.registry import consumers
from ibest.simulate.futurelearn import HOME_PAGE, CourseRunModel, Expected
from services.enrolment.service import SPEC as ENROLMENT
from services.gateway.bootstrap import key_admin
from services.gateway.courses.adapters.files import ExportDirectory
from services.gateway.courses.settings import CourseSettings
from services.gateway.service import build_spec
from services.gateway.settings import GatewaySettings
from services.reporting.service import SPEC as REPORTING
from shared.catalogue import catalogue
from tests.gateway.courses.test_import import FIRST, TOKEN, importer, stored_events
from tests.harness import cloud_event, dead_letters, running_service, stream_events, wait_for

VERB = "http://adlnet.gov/expapi/verbs/"
COURSE = catalogue().courses[0]
HEADERS = {"X-Experience-API-Version": "1.0.3"}


def statement(
    learner_id: str, verb: str, activity: str, at: datetime, statement_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": statement_id or str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "account": {"homePage": HOME_PAGE, "name": learner_id}},
        "verb": {"id": f"{VERB}{verb}", "display": {"en-GB": verb}},
        "object": {"objectType": "Activity", "id": activity},
        "timestamp": at.isoformat().replace("+00:00", "Z"),
    }


async def ibest(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    code: int = await args.func(args, settings)
    return code


@pytest.fixture
async def gateway(settings: Settings, course_settings: CourseSettings) -> AsyncIterator[str]:
    own = GatewaySettings(IBEST_GATEWAY_RATE=10_000, IBEST_GATEWAY_BURST=10_000)
    async with running_service(build_spec(own, course_settings), settings) as base:
        yield base


async def platform_key(settings: Settings) -> str:
    async with key_admin(settings) as admin:
        _, token = await admin.create("course-platform:futurelearn")
    return token


async def test_the_operator_makes_a_course_platform_key_and_its_rate_is_limited(
    settings: Settings,
    course_settings: CourseSettings,
    mapped: CourseRunModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    assert (
        await ibest(settings, "gateway", "keys", "create", "--course-platform", "futurelearn") == 0
    )
    said = capsys.readouterr().out.splitlines()
    assert "for course-platform:futurelearn" in said[0]
    token = said[-1]
    assert (
        await ibest(settings, "gateway", "keys", "create", "--course-platform", "Future Learn") == 1
    )
    slow = GatewaySettings(IBEST_GATEWAY_RATE=0.01, IBEST_GATEWAY_BURST=1)
    learner = next(x for x in mapped.learners if x.mapped(FIRST))
    one = statement(learner.learner_id, "registered", COURSE.activity_iris[0], learner.enrolled_at)
    async with (
        running_service(build_spec(slow, course_settings), settings) as base,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}", **HEADERS}
        ) as http,
    ):
        assert (await http.post("/xapi/statements", json=one)).status_code == 200
        limited = await http.post("/xapi/statements", json=one)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


@pytest.fixture
async def mapped(settings: Settings, key: bytes, tmp_path: Path) -> CourseRunModel:
    """A run whose learners are mapped for xAPI (`--learners-only`: nothing published)."""
    model = CourseRunModel(40, seed=3)
    model.write(tmp_path / "run", FIRST)
    assert (
        await ibest(settings, "import", "futurelearn", str(tmp_path / "run"), "--learners-only")
        == 0
    )
    return model


async def test_statements_from_a_course_platform_key_all_or_nothing(
    settings: Settings, js: JetStreamContext, gateway: str, mapped: CourseRunModel
) -> None:
    token = await platform_key(settings)
    learner = next(x for x in mapped.learners if x.mapped(FIRST))
    at = learner.enrolled_at
    module = COURSE.modules[0]
    registered = statement(learner.learner_id, "registered", COURSE.activity_iris[0], at)
    started = statement(
        learner.learner_id, "launched", module.activity_iris[0], at + timedelta(hours=1)
    )
    async with httpx.AsyncClient(base_url=gateway) as http:
        about = await http.get("/xapi/about")
        assert about.status_code == 200 and about.json() == {"version": ["1.0.3"]}

        # Bearer: both stored, answered with their ids, as an LRS does.
        bearer = {"Authorization": f"Bearer {token}", **HEADERS}
        reply = await http.post("/xapi/statements", json=[registered, started], headers=bearer)
        assert reply.status_code == 200, reply.text
        assert reply.json() == [registered["id"], started["id"]]
        enrolled = await stream_events(js, "clinician.enrolled")
        assert [e["sitecode"] for e in enrolled] == [learner.site]
        assert enrolled[0]["id"] != registered["id"]  # keyed: no trust can pre-empt it
        assert enrolled[0]["time"].startswith(at.strftime("%Y-%m-%dT%H:%M"))

        # Basic (key id as user, key as password): the same statement again is a duplicate.
        basic = base64.b64encode(f"{token.split('_')[1]}:{token}".encode()).decode()
        again = await http.post(
            "/xapi/statements", json=started, headers={"Authorization": f"Basic {basic}", **HEADERS}
        )
        assert again.status_code == 200 and again.json() == [started["id"]]
        assert await stored_events(js) == 2

        # The same id with other content: 409, nothing stored.
        moved = {**started, "timestamp": (at + timedelta(days=2)).isoformat()}
        conflict = await http.post("/xapi/statements", json=moved, headers=bearer)
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "application/problem+json"
        assert conflict.json()["errors"][0]["code"] == "id-conflict"
        # The platform's one problem shape (docs/errors.md), as on /v1/events.
        assert conflict.json()["type"] == "urn:ibest:problem:id-conflict"
        assert conflict.json()["code"] == "id-conflict"
        for auth in ({}, {"Authorization": "Basic eDp5"}):
            unknown = await http.post("/xapi/statements", json=moved, headers={**auth, **HEADERS})
            assert unknown.status_code == 401
            assert unknown.headers["content-type"] == "application/problem+json"
            assert unknown.json()["code"] in ("no-key", "unknown-key")

        # One invalid statement refuses the request, naming its position and reason.
        completed = statement(
            learner.learner_id, "completed", module.activity_iris[0], at + timedelta(hours=2)
        )
        undated = {
            k: v
            for k, v in statement(learner.learner_id, "passed", module.activity_iris[0], at).items()
            if k != "timestamp"
        }
        refused = await http.post("/xapi/statements", json=[completed, undated], headers=bearer)
        assert refused.status_code == 400
        [error] = refused.json()["errors"]
        assert error["field"] == "statements[1].timestamp" and error["code"] == "timestamp-required"
        # A time before year 1 in UTC: a 400 naming it, never a 500.
        early = {**completed, "timestamp": "0001-01-01T00:00:00+01:00"}
        refused = await http.post("/xapi/statements", json=early, headers=bearer)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["code"] == "not-a-time"
        no_id = {k: v for k, v in completed.items() if k != "id"}
        refused = await http.post("/xapi/statements", json=no_id, headers=bearer)
        assert (
            refused.status_code == 400
            and "id is required" in refused.json()["errors"][0]["message"]
        )
        unversioned = await http.post(
            "/xapi/statements", json=completed, headers={"Authorization": f"Bearer {token}"}
        )
        assert unversioned.status_code == 400
        assert unversioned.json()["errors"][0]["message"] == "is missing; send 1.0.3"
        assert await stored_events(js) == 2

        # Valid xAPI the programme does not count: acknowledged, counted, listed as ignored.
        other = statement(learner.learner_id, "experienced", module.activity_iris[0], at)
        stranger = statement("not-a-learner", "completed", module.activity_iris[0], at)
        ignored = await http.post("/xapi/statements", json=[other, stranger], headers=bearer)
        assert ignored.status_code == 200 and ignored.json() == [other["id"], stranger["id"]]
        assert await stored_events(js) == 2
        rows = (await http.get("/v1/rejections", headers=bearer)).json()["rejections"]
        reasons = {r["id"]: r["reasons"][0]["message"] for r in rows}
        assert reasons[other["id"]].startswith("ignored: verb")
        assert reasons[stranger["id"]].startswith("ignored: the actor is not a mapped learner")
        metrics = (await http.get("/metrics")).text
        assert (
            'ibest_xapi_statements_total{outcome="ignored",platform="futurelearn"} 2.0' in metrics
        )

        # A trust's key is refused on xAPI; the platform's key sends training events for any
        # trust on /v1/events, and nothing else.
        async with key_admin(settings) as admin:
            _, trust_token = await admin.create("RTH")
        forbidden = await http.post(
            "/xapi/statements",
            json=completed,
            headers={"Authorization": f"Bearer {trust_token}", **HEADERS},
        )
        assert forbidden.status_code == 403
        assert forbidden.json()["type"] == "urn:ibest:problem:forbidden"
        events = [
            cloud_event(
                "module.started",
                {"clinician_ref": "c-1", "module_id": module.module_id},
                trust=t,
                site=f"{t}01",
            )
            for t in ("RXF", "RTH")
        ]
        ce = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/cloudevents-batch+json",
        }
        assert (await http.post("/v1/events", json=events, headers=ce)).status_code == 200
        patient = cloud_event(
            "patient.assessed",
            {"patient_ref": "p-1", "timepoint": "baseline", "measures": {"rmdq": 3}},
        )
        not_training = await http.post("/v1/events", json=[patient], headers=ce)
        assert not_training.status_code == 403
        # Said as it applies to a course platform, not "only its own trust's events".
        assert "a course-platform key training events" in not_training.json()["detail"]
    assert await dead_letters(js) == []


async def funnel(settings: Settings, expected: Expected) -> dict[str, Any]:
    """The raw funnel nationally and per trust, once enrolment and reporting have counted
    what the exports imply nationally."""
    names = ("clinicians_enrolled", "clinicians_started", "clinicians_completed")
    want = [sum(c.values()) for c in (expected.enrolled, expected.started, expected.completed)]
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running_service(ENROLMENT, settings))
        reporting = await stack.enter_async_context(running_service(REPORTING, settings))
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=reporting, headers={"Authorization": f"Bearer {TOKEN}"})
        )

        async def national() -> list[Any] | None:
            figures = (await api.get("/v1/national?raw=true")).json()["figures"]
            found = [figures[n] for n in names]
            return found if found == want else None

        found: dict[str, Any] = {"national": await wait_for(national, 120, f"funnel {want}")}
        for trust in sorted({t for t, _ in expected.enrolled}):
            figures = (await api.get(f"/v1/trusts/{trust}?raw=true")).json()["figures"]
            found[trust] = [figures[n] for n in names]
        return found


@pytest.mark.slow
async def test_statements_give_the_figures_of_the_equivalent_csv_import(
    settings: Settings,
    js: JetStreamContext,
    key: bytes,
    course_settings: CourseSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IBEST_REPORTING_TOKENS", f"{TOKEN}:raw")
    monkeypatch.setenv("IBEST_REPORTING_SNAPSHOT_SECONDS", "0.2")
    model = CourseRunModel(60, seed=5)
    model.write(tmp_path / "run", FIRST)
    expected = model.expected(FIRST)
    async with importer(settings, js, key) as course_import:
        await course_import.run(ExportDirectory(tmp_path / "run"))
    by_csv = await funnel(settings, expected)
    assert by_csv == {"national": by_csv["national"]} | {
        t: list(expected.funnel(t)) for t in {t for t, _ in expected.enrolled}
    }

    # A fresh platform: the same learners mapped, their progress sent as xAPI statements.
    from tests.gateway.courses.test_import import stored_events as _  # noqa: F401

    for name in (EVENTS_STREAM, DEADLETTER_STREAM):
        await js.delete_stream(name)
    await ensure_streams(js, settings, consumers())
    fresh = settings.model_copy(update={"db_prefix": f"x{uuid.uuid4().hex[:10]}"})
    assert (
        await ibest(fresh, "import", "futurelearn", str(tmp_path / "run"), "--learners-only") == 0
    )
    modules = {m.module_id: m.activity_iris[0] for m in COURSE.modules}
    statements = []
    for learner_id, kind, module_id in sorted(expected.facts):
        at = next(x.enrolled_at for x in model.learners if x.learner_id == learner_id)
        if kind == "clinician.enrolled":
            statements.append(statement(learner_id, "registered", COURSE.activity_iris[0], at))
        else:
            verb = "attempted" if kind == "module.started" else "passed"
            statements.append(
                statement(learner_id, verb, modules[module_id], at + timedelta(hours=1))
            )
    own = GatewaySettings(IBEST_GATEWAY_RATE=10_000, IBEST_GATEWAY_BURST=10_000)
    async with running_service(build_spec(own, course_settings), fresh) as base:
        token = await platform_key(fresh)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}", **HEADERS}
        ) as http:
            for start in range(0, len(statements), 200):
                reply = await http.post("/xapi/statements", json=statements[start : start + 200])
                assert reply.status_code == 200, reply.text
    assert await funnel(fresh, expected) == by_csv
    assert await dead_letters(js) == []
