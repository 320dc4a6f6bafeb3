"""One source of truth for every figure (domain/figure_definitions.py): docs/figures.md is
generated from it and current, every figure the API gives has a definition, and the
OpenAPI descriptions carry them."""

from __future__ import annotations

from datetime import date

from services.reporting.domain.disclosure import flat
from services.reporting.domain.figure_definitions import FIGURES, Unit, definition_of, label_of
from services.reporting.domain.figures import raw_figures, total
from services.reporting.figures_doc import DOC, main, render


def test_docs_figures_md_is_generated_and_current() -> None:
    assert DOC.read_text() == render()
    assert main(["--check"]) == 0


def test_every_figure_the_api_gives_has_a_label_unit_and_definition() -> None:
    names = flat(raw_figures(total([]), date(2026, 11, 30), with_sites_running=True))
    by_profession = {n for n in names if n.startswith("clinicians_") and "_by_profession." in n}
    assert by_profession, "the by-profession breakdown is in the figures"
    for name in set(names) - by_profession:
        d = definition_of(name)
        assert d.label and not d.label[0].islower() and "_" not in d.label, name
        assert len(d.definition) > 40, name
        assert "_" not in label_of(name), name
    # and no definition names a figure that does not exist
    plain = {n for n in FIGURES if "<" not in n}
    assert plain <= set(names)


def test_rates_are_fractions_and_denominators_have_no_direction() -> None:
    assert FIGURES["followup_rate_month_12"].unit is Unit.FRACTION
    assert FIGURES["followup_rate_month_12"].grafana_unit == "percentunit"
    assert FIGURES["followup_due_month_12"].higher_is_better is None
    assert label_of("outcomes.rmdq.month_3.improved_share") == (
        "Share meaningfully improved, Roland-Morris Disability Questionnaire (RMDQ-24), 3 months"
    )


def test_openapi_descriptions_carry_the_definitions() -> None:
    from fastapi import FastAPI

    from services.reporting.service import SPEC

    assert SPEC.routes is not None
    app = FastAPI()
    app.include_router(SPEC.routes())
    schemas = app.openapi()["components"]["schemas"]
    described = schemas["Report"]["properties"]["figures"]["description"]
    for d in FIGURES.values():
        assert f"`{d.name}`: {d.label}" in described, d.name
        assert d.definition in described, d.name
