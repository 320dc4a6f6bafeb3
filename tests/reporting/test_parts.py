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
from services.reporting.domain.parts import leaf_node, parent_node, partials, site_figures
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
@given(seed=st.integers(0, 10**6), leaves=st.integers(1, 40), parents=st.integers(1, 6))
def test_sums_of_parts_equal_the_fold_of_every_entry(seed: int, leaves: int, parents: int) -> None:
    for site in SITES:
        entries = entries_at(site)
        rng = random.Random(seed)
        by_leaf: list[list[Entry]] = [[] for _ in range(leaves)]
        for entry in entries:
            by_leaf[rng.randrange(leaves)].append(entry)
        nodes = [leaf_node(site, part) for part in by_leaf]
        by_parent: list[list[dict[str, object]]] = [[] for _ in range(parents)]
        for node in nodes:
            by_parent[rng.randrange(parents)].append(node)
        root = parent_node(site, [parent_node(site, p) for p in by_parent])
        summary, months = site_figures(root)
        assert summary == fold_counted(site, entries)
        assert months == fold_months(e["m"] or [] for e in entries if e["c"] is not None)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=60), st.integers(1, 59))
def test_partial_sums_are_exact_whatever_the_split(values: list[float], cut: int) -> None:
    joined = partials(values[cut:], partials(values[:cut]))
    assert math.fsum(joined) == math.fsum(values)
