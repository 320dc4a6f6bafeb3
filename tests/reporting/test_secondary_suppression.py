"""Secondary suppression: no suppressed cell is recovered by difference (pure functions)."""

from __future__ import annotations

from datetime import date
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.domain.disclosure import (
    MIN_POSSIBLE_VALUES,
    SUPPRESSED,
    bounds,
    control_count,
    control_rate,
    controlled_names,
    flat,
    protect_national,
    published_figures,
    rate_bases,
    recoverable,
)
from services.reporting.domain.figures import PROFESSIONS, STAGES, Totals, raw_figures
from services.reporting.domain.months import (
    COUNTS,
    month_figures,
    protected_national_series,
)

TODAY = date(2025, 6, 2)


def totals(completed: dict[str, int], *, enrolled: dict[str, int] | None = None) -> Totals:
    t = Totals()
    for prof, n in completed.items():
        for stage in ("enrolled", "started", "completed"):
            t.clinicians[stage][prof] = n
    for prof, n in (enrolled or {}).items():
        t.clinicians["enrolled"][prof] = n
    return t


def add(*parts: Totals) -> Totals:
    out = Totals()
    for t in parts:
        for stage in STAGES:
            for prof, n in t.clinicians[stage].items():
                out.clinicians[stage][prof] += n
    return out


def national(parts: list[Totals], *, every_family: bool = False) -> dict[str, object]:
    whole = add(*parts)
    trusts = [published_figures(t, TODAY, with_sites_running=True) for t in parts]
    return protect_national(
        raw_figures(whole, TODAY, with_sites_running=True),
        published_figures(whole, TODAY, with_sites_running=True),
        trusts,
        every_family=every_family,
    )


def test_bounds_read_a_published_count_as_an_outsider_would() -> None:
    assert bounds(0) == (0, 0)
    assert bounds(SUPPRESSED) == (1, 7)
    assert bounds(10) == (8, 12)


def test_five_trusts_at_star_and_a_national_five_is_recoverable() -> None:
    assert recoverable((5, 5), [SUPPRESSED] * 5 + [0] * 10)
    assert recoverable((9, 9), [SUPPRESSED, 10])  # 9 - (8..12): the "*" is 1
    assert not recoverable((12, 12), [SUPPRESSED, 10])  # 12 - (8..12): 1 to 4
    assert not recoverable((30, 30), [SUPPRESSED, 10, 15])
    assert not recoverable((40, 40), [10, 15, 15])  # nothing suppressed, nothing to recover


@given(st.lists(st.integers(0, 30), min_size=1, max_size=8))
def test_recoverable_says_exactly_when_a_suppressed_cell_is_pinned(cells: list[int]) -> None:
    """Brute force: the values each "*" can take, given the exact total and the others."""
    published = [control_count(n) for n in cells]
    options = [range(bounds(p)[0], bounds(p)[1] + 1) for p in published]
    if len(cells) > 5:  # keep the brute force small
        return
    feasible = [combo for combo in product(*options) if sum(combo) == sum(cells)]
    pinned = any(
        published[i] == SUPPRESSED and len({combo[i] for combo in feasible}) < MIN_POSSIBLE_VALUES
        for i in range(len(cells))
    )
    assert recoverable((sum(cells), sum(cells)), published) == pinned


@pytest.mark.parametrize("every_family", [False, True])
def test_the_demo_case_national_doctors_no_longer_give_back_five_trusts(every_family: bool) -> None:
    """By default (the by-profession family protected) and with every family protected."""
    ones = [totals({"doctor": 1, "physiotherapist": 20}) for _ in range(5)]
    rest = [totals({"physiotherapist": 30}) for _ in range(10)]
    figures = national(ones + rest, every_family=every_family)
    doctors = figures["clinicians_completed_by_profession"]
    assert isinstance(doctors, dict)
    assert doctors["doctor"] == SUPPRESSED  # not 5
    # The whole breakdown goes under control together (one exact cell beside controlled
    # ones would give a controlled one back): 400 stays 400. The total is a headline count:
    # exact by default; with every family protected it goes with its breakdown (405 is
    # already a multiple of 5).
    assert figures["clinicians_completed"] == 405
    assert doctors["physiotherapist"] == 400
    # Every published value now leaves each trust's "*" at least two possible values.
    trusts = [published_figures(t, TODAY, with_sites_running=True) for t in ones + rest]
    cells = [flat(t)["clinicians_completed_by_profession.doctor"] for t in trusts]
    assert not recoverable(bounds(doctors["doctor"]), cells)


def test_national_stays_exact_when_nothing_can_be_recovered() -> None:
    parts = [
        totals({"nurse": 3, "physiotherapist": 40}),
        totals({"nurse": 12}),
        totals({"nurse": 25, "physiotherapist": 9}),
    ]
    whole = add(*parts)
    exact = raw_figures(whole, TODAY, with_sites_running=True)
    assert national(parts) == exact


def test_by_default_only_the_profession_breakdowns_are_controlled() -> None:
    """The lead's decision (HAZ-007/008): headline national counts, rates and means stay
    exact; only a by-profession breakdown that would pin a trust's "*" is controlled."""
    parts = [totals({"doctor": 1}), totals({"doctor": 1}), totals({"nurse": 40})]
    whole = add(*parts)
    exact = raw_figures(whole, TODAY, with_sites_running=True)
    trusts = [published_figures(t, TODAY, with_sites_running=True) for t in parts]
    chosen = controlled_names(
        exact, published_figures(whole, TODAY, with_sites_running=True), trusts
    )
    assert "clinicians_completed_by_profession.doctor" in chosen
    assert "clinicians_completed_by_profession.nurse" in chosen  # the breakdown together
    assert chosen == {n for n in chosen if "_by_profession." in n}
    figures = national(parts)
    assert figures["clinicians_completed"] == 42  # headline: exact; 0 stays 0
    assert figures["clinicians_intending"] == 0
    assert figures["clinicians_completed_by_profession"] == {
        **dict.fromkeys(PROFESSIONS, 0),
        "doctor": SUPPRESSED,
        "nurse": 40,
    }


@pytest.mark.parametrize("every_family", [False, True])
def test_a_recoverable_headline_count_is_controlled_only_with_every_family(
    every_family: bool,
) -> None:
    """Two trusts with one doctor each: the national 2 beside their two "*" pins both. By
    default it is published exactly (the residual risk accepted at national scale,
    HAZ-008); IBEST_REPORTING_PROTECT_NATIONAL (a publication from few trusts) controls it,
    and the national rates built on it with it (rate_bases)."""
    parts = [totals({"doctor": 1}), totals({"doctor": 1})]
    trusts = [published_figures(t, TODAY, with_sites_running=True) for t in parts]
    assert recoverable((2, 2), [t["clinicians_completed"] for t in trusts])
    figures = national(parts, every_family=every_family)
    assert figures["clinicians_completed"] == (SUPPRESSED if every_family else 2)
    # clinicians_facilitating_rate is built on clinicians_completed: 0 of 2 exactly, or
    # under control (0 over a hidden count is "*" too, it would reveal the count).
    assert figures["clinicians_facilitating_rate"] == (control_rate(0, 2) if every_family else 0.0)


def test_only_the_pinned_family_and_its_rates_are_controlled() -> None:
    parts = [totals({"doctor": 1}), totals({"doctor": 1}), totals({"nurse": 40})]
    whole = add(*parts)
    exact = raw_figures(whole, TODAY, with_sites_running=True)
    trusts = [published_figures(t, TODAY, with_sites_running=True) for t in parts]
    chosen = controlled_names(
        exact, published_figures(whole, TODAY, with_sites_running=True), trusts, every_family=True
    )
    # Each "*" trust is 1 of 2 doctors nationally: pinned. Enrolled/started/completed are
    # controlled with their breakdowns; intending and delivering (all zero) stay exact.
    assert "clinicians_completed_by_profession.doctor" in chosen
    assert "clinicians_enrolled" in chosen
    assert not {n for n in chosen if "intending" in n or "delivering" in n}
    assert "patients_baseline" not in chosen


def test_a_star_beside_zeros_never_shows_a_group_make_up() -> None:
    site = published_figures(totals({"doctor": 2}), TODAY, with_sites_running=False)
    assert site["clinicians_completed"] == SUPPRESSED
    assert site["clinicians_completed_by_profession"] == dict.fromkeys(PROFESSIONS, SUPPRESSED)
    # A total published as a rounded count keeps its breakdown as it is.
    larger = published_figures(totals({"doctor": 2, "nurse": 20}), TODAY, with_sites_running=False)
    assert larger["clinicians_completed_by_profession"]["doctor"] == SUPPRESSED
    assert larger["clinicians_completed_by_profession"]["nurse"] == 20
    assert larger["clinicians_completed_by_profession"]["other"] == 0
    # A zero total keeps its zeros.
    assert site["clinicians_intending_by_profession"] == dict.fromkeys(PROFESSIONS, 0)


def test_every_national_rate_names_the_counts_it_is_built_from() -> None:
    """A national rate or mean beside a count published under control would give the count
    back, so each one declares its counts (`rate_bases`); a figure added later fails here
    until it does."""
    exact = flat(raw_figures(Totals(), TODAY, with_sites_running=True))
    counts = {n for n, v in exact.items() if isinstance(v, int) and not isinstance(v, bool)}
    for name in exact.keys() - counts:
        bases = rate_bases(name)
        assert bases is not None, f"{name}: add the counts it is built from to rate_bases"
        assert set(bases) <= counts, name


def test_the_national_monthly_series_is_protected_month_by_month() -> None:
    """IBEST_REPORTING_PROTECT_NATIONAL on the monthly series: each month is judged against
    that month's trust figures; a month that pins nothing stays exact, and the follow-up
    rate built on a controlled count is controlled with it."""

    def month(enrolled: int, patients: int = 0, due: int = 0) -> dict[str, int]:
        counts = dict.fromkeys(COUNTS, 0)
        counts.update(
            clinicians_enrolled=enrolled, patients_month_3=patients, followup_due_month_3=due
        )
        return counts

    # Month 1: two trusts at "*" (1 each), national 2 pins both. Month 2: 21 and 30.
    trusts = [[month(1, 1, 2), month(21, 20, 25)], [month(1, 1, 2), month(30, 30, 30)]]
    national = [month(2, 2, 4), month(51, 50, 55)]
    series = protected_national_series(national, trusts)
    assert series["clinicians_enrolled"] == [SUPPRESSED, 51]
    assert series["patients_month_3"] == [SUPPRESSED, 50]
    assert series["followup_rate_month_3"] == [control_rate(2, 4), round(50 / 55, 3)]
    # Without the setting the national series is exact (series_figures, published=False).
    assert [month_figures(m, published=False)["clinicians_enrolled"] for m in national] == [2, 51]
