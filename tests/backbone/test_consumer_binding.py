"""A service binds to the durable consumer the operator declared; it never makes one."""

from __future__ import annotations

import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ibest.backbone.consumer import handlers
from ibest.backbone.runtime import (
    ConsumerNotDeclared,
    ServiceContext,
    ServiceSpec,
    Wiring,
    create_app,
)
from ibest.backbone.settings import Settings
from ibest.backbone.streams import EVENTS_STREAM, consumer_config, ensure_consumer
from shared.envelope import AnyEvent
from tests.harness import cloud_event, publish_raw, running_service, wait_for


def spec(name: str, applied: list[AnyEvent]) -> ServiceSpec:
    async def wire(ctx: ServiceContext) -> Wiring:
        async def on_enrolled(event: AnyEvent) -> None:
            applied.append(event)

        async def apply(events: list[AnyEvent]) -> None:  # one event: a batch of one
            for event in events:
                await on_enrolled(event)

        return Wiring(handlers=handlers(["clinician.enrolled"], apply))

    return ServiceSpec(name, ["clinician.enrolled"], wire)


async def test_a_service_without_a_declared_consumer_does_not_start_or_create_one(
    settings: Settings, js: JetStreamContext
) -> None:
    app = create_app(spec("undeclared", []), settings)
    with pytest.raises(ConsumerNotDeclared, match="ibest streams apply"):
        async with app.router.lifespan_context(app):
            pass
    with pytest.raises(NotFoundError):
        await js.consumer_info(EVENTS_STREAM, "undeclared")


async def test_a_consumer_declared_with_other_filters_stops_the_service(
    settings: Settings, js: JetStreamContext
) -> None:
    await ensure_consumer(
        js, EVENTS_STREAM, consumer_config("narrow", ["patient.assessed"], settings)
    )
    app = create_app(spec("narrow", []), settings)
    with pytest.raises(ConsumerNotDeclared, match=r"patient\.assessed"):
        async with app.router.lifespan_context(app):
            pass
    info = await js.consumer_info(EVENTS_STREAM, "narrow")
    assert info.config.filter_subjects == ["ibest.v1.*.patient.assessed"]


async def test_a_service_consumes_through_the_declared_consumer_unchanged(
    settings: Settings, js: JetStreamContext
) -> None:
    await ensure_consumer(
        js, EVENTS_STREAM, consumer_config("bound", ["clinician.enrolled"], settings)
    )
    before = (await js.consumer_info(EVENTS_STREAM, "bound")).config
    applied: list[AnyEvent] = []
    await publish_raw(
        js,
        cloud_event(
            "clinician.enrolled",
            {"clinician_ref": "c-bound", "profession": "nurse", "course_version": "1"},
        ),
    )
    async with running_service(spec("bound", applied), settings):

        async def consumed() -> bool:
            return len(applied) == 1

        await wait_for(consumed, 30, "the enrolment applied")
    assert (await js.consumer_info(EVENTS_STREAM, "bound")).config == before
