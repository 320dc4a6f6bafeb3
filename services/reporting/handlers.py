"""Event handlers: every consumed event becomes one fact of its entity (see domain.facts)."""

from __future__ import annotations

from ibest.backbone.consumer import Handler
from shared.envelope import AnyEvent

from .domain.facts import CONSUMES
from .reports import Reporting


def handlers(reporting: Reporting) -> dict[str, Handler]:
    async def apply(event: AnyEvent) -> None:
        await reporting.apply(event)

    return dict.fromkeys(CONSUMES, apply)
