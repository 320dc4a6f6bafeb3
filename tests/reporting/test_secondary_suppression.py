"""Secondary suppression: no suppressed cell is recovered by difference (pure functions)."""

from __future__ import annotations

from datetime import date
from itertools import product

from hypothesis import given
from hypothesis import strategies as st

from services.reporting.domain.disclosure import (
    MIN_POSSIBLE_VALUES,
    SUPPRESSED,
    bounds,
    control_count,
    controlled_names,
    flat,
    protect_national,
    published_figures,
    rate_bases,
    recoverable,
)
from services.reporting.domain.figures import PROFESSIONS, STAGES, Totals, raw_figures

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


def national(parts: list[Totals]) -> dict[str, object]:
    whole = add(*parts)
    trusts = [published_figures(t, TODAY, with_sites_running=True) for t in parts]
    return protect_national(raw_figures(whole, TODAY, with_sites_running=True),
                            published_figures(whole, TODAY, with_sites_running=True), trusts)


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
    pinned = any(published[i] == SUPPRESSED
                 and len({combo[i] for combo in feasible}) < MIN_POSSIBLE_VALUES
                 for i in range(len(cells)))
    assert recoverable((sum(cells), sum(cells)), published) == pinned


def test_the_demo_case_national_doctors_no_longer_give_back_five_trusts() -> None:
    ones = [totals({"doctor": 1, "physiotherapist": 20}) for _ in range(5)]
    rest = [totals({"physiotherapist": 30}) for _ in range(10)]
    figures = national(ones + rest)
    doctors = figures["clinicians_completed_by_profession"]
    assert isinstance(doctors, dict)
    assert doctors["doctor"] == SUPPRESSED  # not 5
    # The total and its whole breakdown go under control together (an exact total beside
    # controlled cells would give the cell back): 400 stays 400, 100 + 300 rounded.
    assert figures["clinicians_completed"] == 405
    assert doctors["physiotherapist"] == 400
    # Every published value now leaves each trust's "*" at least two possible values.
    trusts = [published_figures(t, TODAY, with_sites_running=True) for t in ones + rest]
    cells = [flat(t)["clinicians_completed_by_profession.doctor"] for t in trusts]
    assert not recoverable(bounds(doctors["doctor"]), cells)


def test_national_stays_exact_when_nothing_can_be_recovered() -> None:
    parts = [totals({"nurse": 3, "physiotherapist": 40}), totals({"nurse": 12}),
             totals({"nurse": 25, "physiotherapist": 9})]
    whole = add(*parts)
    exact = raw_figures(whole, TODAY, with_sites_running=True)
    assert national(parts) == exact


def test_only_the_pinned_family_and_its_rates_are_controlled() -> None:
    parts = [totals({"doctor": 1}), totals({"doctor": 1}), totals({"nurse": 40})]
    whole = add(*parts)
    exact = raw_figures(whole, TODAY, with_sites_running=True)
    trusts = [published_figures(t, TODAY, with_sites_running=True) for t in parts]
    chosen = controlled_names(exact, published_figures(whole, TODAY, with_sites_running=True),
                              trusts)
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
    larger = published_figures(totals({"doctor": 2, "nurse": 20}), TODAY,
                               with_sites_running=False)
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
