"""What a site counts: each entity's contribution there, with the entity version it was
computed from.

A batch refreshes a site's summary from this record (one document per site) instead of
re-reading every entity at the site. Merging keeps, per entity, the entry of the newest
version, so writers may merge in any order, again after a crash, or concurrently (under the
store's revision check), and the record still ends at each entity's newest contribution.
An entity that moved leaves an entry without a contribution at its old site, so an older
writer cannot put it back there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from services.reporting.domain.facts import (
    CLASSES,
    CLINICIANS,
    CONTRIBUTION,
    ENTITY_KINDS,
    NOTIFICATIONS,
    PATIENTS,
    Contribution,
    Fact,
    outcome_of,
    read_facts,
)
from services.reporting.domain.figures import Summary, fold_site
from services.reporting.domain.months import Steps, steps, timeline

EntityId = tuple[str, str]
"""(entity kind, entity key)"""
Entry = dict[str, Any]
"""{"k": kind, "id": key, "v": version, "c": contribution or None, "m": its monthly steps
where counted (`domain.months.steps`) or None}; a leaf of the store keeps it without `id`
and without the contribution's trust and site (nothing counted reads them), its outcomes
and steps compact (`stored_contribution`, `stored_steps`)."""


@dataclass(frozen=True)
class Counted:
    """An entity's contribution at one site as of its version `v`; None: not counted there."""

    v: int
    contribution: Contribution | None
    months: list[list[Any]] | None = None
    """Its monthly steps where counted (`domain.months.steps`), from the same version of
    its facts."""


def counted_of(
    kind: str, key: str, version: int, facts: dict[str, Fact], sites: Iterable[str]
) -> Iterator[tuple[str, EntityId, Counted]]:
    """An entity as its sites count it: its contribution at its current site, none at every
    other site it may have been counted at (`sites`, so a move leaves the old site); each
    as of the entity's `version`. `facts` as stored (`facts.stored_fact`, or whole)."""
    facts = read_facts(facts)
    contribution = CONTRIBUTION[kind](facts)
    current = contribution["site"] if contribution else None
    months = steps(timeline(kind, facts)) if current else None
    for site in {*sites, *([current] if current else [])}:
        here = site == current
        yield (
            site,
            (kind, key),
            Counted(version, contribution if here else None, months if here else None),
        )


def stored_contribution(contribution: Contribution | None) -> Contribution | None:
    """A contribution as a leaf entry keeps it: a patient's outcomes as `[change,
    improved]` pairs, as its facts keep them (`facts.stored_fact`); `read_contribution`
    gives it back whole."""
    if contribution is None or "outcomes" not in contribution:
        return contribution
    return {
        **contribution,
        "outcomes": {
            tp: {m: [o["change"], o["improved"]] for m, o in measures.items()}
            for tp, measures in contribution["outcomes"].items()
        },
    }


def stored_steps(steps: Steps | None) -> list[list[Any]] | None:
    """An entity's monthly steps (`months.steps`) as a leaf entry keeps them: each
    `[YYYYMM, {count: change}]` when its state changes that month, `[YYYYMM, {count:
    change}, false]` when only a follow-up falls due (the month as a number, the flag
    left out when true); `read_steps` gives them back."""
    if steps is None:
        return None
    return [
        [int(month[:4]) * 100 + int(month[5:7]), delta, *([] if changed else [False])]
        for month, delta, changed in steps
    ]


def read_steps(stored: Iterable[list[Any]] | None) -> Steps:
    """Stored steps as `months.steps` gives them, whatever version stored them (a version
    before issue 26's byte cut kept `["YYYY-MM", {count: change}, 1 or 0]`)."""
    out: Steps = []
    for step in stored or []:
        month = step[0] if isinstance(step[0], str) else f"{step[0] // 100:04d}-{step[0] % 100:02d}"
        out.append([month, step[1], bool(step[2]) if len(step) > 2 else True])
    return out


def read_contribution(stored: Contribution) -> Contribution:
    """A stored contribution whole, whatever version stored it (a pair or `{change,
    improved}` per outcome)."""
    if "outcomes" not in stored:
        return stored
    return {
        **stored,
        "outcomes": {
            tp: {m: outcome_of(o) for m, o in measures.items()}
            for tp, measures in stored["outcomes"].items()
        },
    }


def merge(stored: Iterable[Entry], incoming: Mapping[EntityId, Counted]) -> list[Entry]:
    """The stored entries with `incoming` merged in: a newer version replaces an entry, an
    equal or older one is ignored (an equal version was computed from the same facts)."""
    by_id = {(e["k"], e["id"]): e for e in stored}
    for (kind, key), counted in incoming.items():
        old = by_id.get((kind, key))
        if old is None or old["v"] < counted.v:
            by_id[(kind, key)] = {
                "k": kind,
                "id": key,
                "v": counted.v,
                "c": counted.contribution,
                "m": counted.months,
            }
    return list(by_id.values())


def fold_counted(site: str, entries: Iterable[Entry]) -> Summary:
    """The site's summary from the contributions it counts."""
    by_kind: dict[str, list[Contribution]] = {kind: [] for kind in ENTITY_KINDS}
    for entry in entries:
        if entry["c"] is not None:
            by_kind[entry["k"]].append(read_contribution(entry["c"]))
    return fold_site(
        site,
        site[:3],
        by_kind[CLINICIANS],
        by_kind[PATIENTS],
        by_kind[CLASSES],
        by_kind[NOTIFICATIONS],
    )
