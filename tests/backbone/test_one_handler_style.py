"""One handler style (docs/architecture.md, "Consuming"): every consuming service's
`handlers.py` is one function, `of(service)`, built by the backbone's one builder from the
events its declaration consumes (said once) and its one batch use case, `apply_many`
(one event is a batch of one)."""

from __future__ import annotations

import ast
import importlib
import inspect
from typing import Any

import pytest

from ibest.backbone.consumer import Handlers
from ibest.backbone.declaration import ServiceDeclaration
from ibest.registry import SERVICES
from shared.envelope import AnyEvent

CONSUMING = [s for s in SERVICES if s.consumes]


class Service:
    """Stands in for any service's application object: only its batch use case."""

    async def apply_many(self, events: list[AnyEvent]) -> None:
        """Applies nothing (the test looks at what the handlers are built from)."""


def test_every_service_that_consumes_is_checked() -> None:
    assert {s.name for s in CONSUMING} >= {"enrolment", "outcomes", "notifications"}


@pytest.mark.parametrize("declaration", CONSUMING, ids=lambda s: s.name)
def test_handlers_are_the_one_builder_over_the_declared_events(
    declaration: ServiceDeclaration,
) -> None:
    module = importlib.import_module(f"services.{declaration.name}.handlers")
    tree = ast.parse(inspect.getsource(module))
    defined = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    assert defined == ["of"]
    service = Service()
    built: Any = module.of(service)
    assert isinstance(built, Handlers)
    assert built.consumes == frozenset(declaration.consumes)
    assert built.apply == service.apply_many
