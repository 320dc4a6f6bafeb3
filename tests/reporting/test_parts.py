"""A site's summary summed from parts is the summary folded from all its entries, bit for
bit (floats included), however the entries fall into parts (domain.parts)."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting.domain.counted import Entry, counted_of, fold_counted
from services.reporting.domain.facts import Fact, facts_of
from services.reporting.domain.months import fold_months
from services.reporting.domain.parts import (
    Node,
    combine,
    entry_node,
    leaf_node,
    partials,
    site_figures,
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
