"""A service's consumed events are declared once (its declaration); the runtime refuses to
start a service whose wiring handles other events than those (ibest.backbone.runtime)."""

from __future__ import annotations

import re

import pytest

from ibest.backbone.consumer import handlers
from ibest.backbone.runtime import (
    HandlersNotDeclared,
    ServiceContext,
    ServiceSpec,
    Wiring,
    check_handlers,
)
from shared.envelope import AnyEvent


async def handle(events: list[AnyEvent]) -> None:
    """A use case that stores nothing (the check looks only at which events are handled)."""


async def wire(ctx: ServiceContext) -> Wiring:
    raise AssertionError("not called: the check is given the wiring")


SPEC = ServiceSpec("probe", ["clinician.enrolled", "module.started"], wire)


def test_handling_exactly_the_declared_events_passes() -> None:
    check_handlers(SPEC, Wiring(handlers(["clinician.enrolled", "module.started"], handle)))


@pytest.mark.parametrize(
    ("consumes", "named"),
    [
        (["clinician.enrolled"], "declared ['module.started'] without a handler"),
        (
            ["clinician.enrolled", "module.started", "class.started"],
            "handlers for ['class.started'] not declared",
        ),
    ],
)
def test_a_missing_or_undeclared_handler_stops_the_start(consumes: list[str], named: str) -> None:
    with pytest.raises(HandlersNotDeclared, match=re.escape(named)):
        check_handlers(SPEC, Wiring(handlers(consumes, handle)))
