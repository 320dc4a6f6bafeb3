"""A site's summary summed from parts is the summary folded from all its entries, bit for
bit (floats included), however the entries fall into parts (domain.parts)."""

from __future__ import annotations

import copy
import math
import random
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting.domain.counted import Entry, counted_of, fold_counted
from services.reporting.domain.facts import Fact, facts_of
from services.reporting.domain.months import fold_months
from services.reporting.domain.parts import (
    Node,
    add,
    combine,
    entry_node,
    leaf_node,
    partials,
    residue,
    restored,
    rounded,
    site_figures,
    zero,
)
from tests.reporting import dataset as ds


def entities() -> dict[tuple[str, str], tuple[dict[str, Fact], set[str]]]:
    """The reporting dataset's entities: their facts and the sites they may count at."""
    found: dict[tuple[str, str], tuple[dict[str, Fact], set[str]]] = {}
    for raw in ds.events():
        for fact in facts_of(ds.parsed(raw)):
            facts, sites = found.setdefault((fact.entity, fact.key), ({}, set()))
            facts[fact.fact_id] = fact.fact
            if fact.places:
                sites.add(fact.fact["site"])
    return found


ENTITIES = entities()
SITES = sorted({site for _, sites in ENTITIES.values() for site in sites})


def entries_at(site: str) -> list[Entry]:
    """Every entry the reporting dataset counts (or no longer counts) at `site`."""
    found = []
    for (kind, key), (facts, sites) in ENTITIES.items():
        for where, (k, i), counted in counted_of(kind, key, 1, facts, sites):
            if where == site:
                found.append(
                    {"k": k, "id": i, "v": 1, "c": counted.contribution, "m": counted.months}
                )
    return found


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), leaves=st.integers(1, 40), groups=st.integers(1, 6))
def test_sums_of_parts_equal_the_fold_of_every_entry(seed: int, leaves: int, groups: int) -> None:
    for site in SITES:
        entries = entries_at(site)
        rng = random.Random(seed)
        by_leaf: list[list[Entry]] = [[] for _ in range(leaves)]
        for entry in entries:
            by_leaf[rng.randrange(leaves)].append(entry)
        nodes = [leaf_node(site, part) for part in by_leaf]
        by_group: list[list[Node]] = [[] for _ in range(groups)]
        for node in nodes:
            by_group[rng.randrange(groups)].append(node)
        summary, months, counted = site_figures(site, [combine(g) for g in by_group])
        assert summary == fold_counted(site, entries)
        assert months == fold_months(e["m"] or [] for e in entries if e["c"] is not None)
        assert counted == sum(1 for e in entries if e["c"] is not None)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_entries_taken_out_leave_exactly_the_rest(seed: int) -> None:
    """A leaf's sums move by what a newer entry adds less what the one it replaces took:
    entries added and then taken out, in any order, leave no trace."""
    others = [e for site in SITES[1:] for e in entries_at(site)]
    for site in SITES[:1]:
        entries = entries_at(site)
        rng = random.Random(seed)
        extra = rng.sample(others, min(len(others), 8))
        moves = [entry_node(site, e) for e in entries + extra]
        rng.shuffle(moves)
        node = combine([combine(moves)], [entry_node(site, e) for e in extra])
        summary, months, _ = site_figures(site, [node])
        assert summary == fold_counted(site, entries)
        assert months == fold_months(e["m"] or [] for e in entries if e["c"] is not None)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=60), st.integers(1, 59))
def test_partial_sums_are_exact_whatever_the_split(values: list[float], cut: int) -> None:
    joined = partials(values[cut:], partials(values[:cut]))
    assert math.fsum(joined) == math.fsum(values)
    taken = partials((-v for v in values[:cut]), joined)
    assert math.fsum(taken) == math.fsum(values[cut:])


def test_every_entry_alone_is_summed_as_folded() -> None:
    """Each entry alone (an outcome that did not improve keeps its `improved` of 0)."""
    for site in SITES:
        for entry in entries_at(site):
            summary, _, _ = site_figures(site, [leaf_node(site, [entry])])
            assert summary == fold_counted(site, [entry])


def canonical(sums: Any) -> Any:
    """Exact sums with every partial-sum list as the exact value it stands for (as a
    fraction), so two representations of one value compare equal."""
    if isinstance(sums, dict):
        return {key: canonical(value) for key, value in sums.items()}
    if isinstance(sums, list):
        return sum((Fraction(x) for x in sums), Fraction(0))
    return sums


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_a_summary_and_its_residue_give_back_the_exact_sums(seed: int) -> None:
    """A site document keeps only what its summary cannot say of its exact sums (partial
    sums of more than one float, classes per date): with the summary they are the exact sums
    again, and so are the sums kept whole (a document of an earlier version)."""
    rng = random.Random(seed)

    def fractional(entries: list[Entry]) -> list[Entry]:
        """The entries with every outcome's change a random fraction (inexact sums)."""
        out = copy.deepcopy(entries)
        for entry in out:
            for measures in ((entry["c"] or {}).get("outcomes") or {}).values():
                for outcome in measures.values():
                    outcome["change"] = rng.uniform(-30, 30)
        return out

    others = fractional([e for site in SITES[1:] for e in entries_at(site)])
    for site in SITES:
        entries = fractional(entries_at(site))
        taken = rng.sample(others, min(len(others), 6))
        sums = combine(
            [entry_node(site, e) for e in entries + taken], [entry_node(site, e) for e in taken]
        )["s"]
        summary = rounded(add(zero(site), sums))
        assert canonical(restored(summary, residue(sums))) == canonical(sums)
        assert canonical(restored(summary, sums)) == canonical(sums)
        assert len(str(residue(sums))) < len(str(sums))
