"""A site's summary as the sum of parts, so that an event's cost does not grow with its
site.

Each entity counted at a site belongs to one of the site's parts (leaves), chosen by a hash
of the entity (`entity_hash`). A leaf keeps its entities' entries (`domain.counted`) only;
the site's exact sums are the sum of what every entry counts, sparse (no zeros), moved by
each batch by what its entries add less what the entries they replace took (`combine`),
or summed afresh from every entry (`leaf_node`). A batch rewrites only its entities'
entries, whatever the size of the site, and no leaf grows beyond a few dozen entities or
the share of the site its hash gives it (1/256; `DEPTHS`). A site document keeps its
summary and only what that cannot say of the exact sums (`residue`, `restored`).

Sums are exact and independent of how the entities fall into parts: counts add up; each
float total is kept as the exact partial sums of Shewchuk's algorithm (what `math.fsum`
keeps internally) and rounded once, at the root, so a site's `sum_change` is bit for bit
`math.fsum` of all its values, as `figures.fold_site` computes it. A part's sum is the sum
of `fold_site` over each of its entries alone, so a counter added to `fold_site` is summed
here without a change (`add` refuses a value it does not know how to add).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from services.reporting.domain.counted import Entry, fold_counted, read_steps
from services.reporting.domain.figures import Summary
from services.reporting.domain.months import fold_months

LEVELS = 2
"""Hex digits of an entity's hash that name its leaf at most: 256 leaves per site, so a leaf
holds 1/256 of a large site (a leaf write costs the server its whole document). 16 leaves
wrote 9% fewer documents in the 10,000-event backfill but a leaf 16 times larger: the time
per event at one site of a few thousand patients grew 2.5 times faster
(docs/performance.md)."""
DEPTHS = ((48, 0), (768, 1))
"""How many hex digits name the leaf of an entity placed at a site that counts fewer than so
many entities: one leaf while a site is small, 16 while it is middling, 256 beyond
(`depth_for`). A batch writes one document per leaf it touches, and a small site's
entities, each in a leaf of its own among 256, made a batch write one leaf per entity. An
entity stays in the leaf it was first placed in, so a leaf holds at most about 48 entities
placed while its site was small (45 per leaf while middling) and 1/256 of the rest."""
CLASS_DATES = "class_dates"
"""The one summary value that is not a sum (first and last class date): kept as a count of
classes per date, which adds and subtracts, and read as its first and last date."""

Node = dict[str, Any]
"""What entries count together: `s` their exact sum (a summary whose floats are
partial-sum lists), `m` their monthly steps summed by month ({month: {"d": {count: change},
"c": changes}}), and `k` how many of them count somewhere here (`c` not None)."""


def entity_hash(kind: str, key: str) -> str:
    """A stable 20-hex-digit hash of an entity: its leaf and its field name in the leaf."""
    return hashlib.blake2b(f"{kind}/{key}".encode(), digest_size=10).hexdigest()


def part_id(site: str, digits: str) -> str:
    """The id of the part of `site` whose entities' hashes start with `digits`."""
    return f"{site}/{digits}"


def depth_for(counted: int) -> int:
    """How many hex digits name the leaf of an entity placed now at a site that counts
    `counted` entities (`DEPTHS`)."""
    for below, depth in DEPTHS:
        if counted < below:
            return depth
    return LEVELS


def leaf_digits(digest: str, depth: int) -> str:
    """The part of a site that holds the entity of hash `digest` placed at `depth`: its
    first `depth` hex digits, `-` for the one leaf of depth 0 (a field name cannot be
    empty)."""
    return digest[:depth] if depth else "-"


def partials(values: Iterable[float], into: list[float] | None = None) -> list[float]:
    """Shewchuk's exact partial sums of `values` (added to `into`): non-overlapping floats
    whose exact sum is the exact sum of everything added; `math.fsum` of them rounds it."""
    parts = list(into or [])
    for x in values:
        i = 0
        for y in parts:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                parts[i] = lo
                i += 1
            x = hi
        parts[i:] = [x]
    return parts


def exact(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A summary as something that adds and subtracts exactly: every float as its partial
    sums (a one-element list); the class dates as a count of classes per date."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key == CLASS_DATES:
            dates = [value["first"], value["last"]] if value else []
            out[key] = {d: 1 for d in dates} if len(set(dates)) != 1 else {dates[0]: 1}
        elif isinstance(value, Mapping):
            out[key] = exact(value)
        elif isinstance(value, float):
            out[key] = [value]
        else:
            out[key] = value
    return out


def rounded(summary: Mapping[str, Any]) -> Summary:
    """The summary an exact sum stands for: each partial-sum list rounded with `fsum`, the
    class dates as the first and last date with a class."""
    out: Summary = {}
    for key, value in summary.items():
        if key == CLASS_DATES:
            dates = sorted(d for d, n in value.items() if n)
            out[key] = {"first": dates[0], "last": dates[-1]} if dates else None
        elif isinstance(value, Mapping):
            out[key] = rounded(value)
        elif isinstance(value, list):
            out[key] = math.fsum(value)
        else:
            out[key] = value
    return out


def add(total: dict[str, Any], more: Mapping[str, Any], sign: int = 1) -> dict[str, Any]:
    """`total` with the exact summary `more` added in (`sign` -1: taken out), in place."""
    for key, value in more.items():
        have = total.get(key)
        if isinstance(value, Mapping):
            total[key] = add(dict(have) if isinstance(have, Mapping) else {}, value, sign)
        elif isinstance(value, str) or value is None:
            total.setdefault(key, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            total[key] = (have or 0) + sign * value
        elif isinstance(value, list):
            total[key] = partials(
                (sign * x for x in value), have if isinstance(have, list) else None
            )
        else:
            raise TypeError(f"cannot add {key}={value!r} of a summary")
    return total


def zero(site: str) -> dict[str, Any]:
    """The exact summary of a site that counts nothing."""
    return exact(fold_counted(site, ()))


def sparse(summary: Mapping[str, Any]) -> dict[str, Any]:
    """An exact summary without what adding it changes nothing by: zero counts, empty
    maps, the site's names (the root starts from `zero`, which has them all). A map with
    float sums is a record (an outcome: n, improved, sums): it is kept whole while any of
    its counts is not zero and goes whole when all are (no patient has it any more)."""
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    sums: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            inner = sparse(value)
            if inner:
                out[key] = inner
        elif isinstance(value, list):
            sums[key] = value
        elif isinstance(value, int) and not isinstance(value, bool):
            counts[key] = value
    if sums:
        return {**out, **counts, **sums} if out or any(counts.values()) else {}
    return {**out, **{key: n for key, n in counts.items() if n}}


def residue(sums: Mapping[str, Any]) -> dict[str, Any]:
    """What exact sums hold beyond the summary rounded from them (`rounded`): every
    partial-sum list of more than one float, and the count of classes per date. Every count
    and every one-float sum the summary says exactly, so a site document keeps only this
    beside its summary (`restored`)."""
    out: dict[str, Any] = {}
    for key, value in sums.items():
        if key == CLASS_DATES:
            out[key] = value
        elif isinstance(value, Mapping):
            inner = residue(value)
            if inner:
                out[key] = inner
        elif isinstance(value, list) and len(value) > 1:
            out[key] = value
    return out


def restored(summary: Mapping[str, Any], kept: Mapping[str, Any]) -> dict[str, Any]:
    """The exact sums a summary was rounded from, given what `residue` kept of them (or the
    sums whole): the same exact values, sparse."""
    return sparse(_overlaid(exact(summary), kept))


def _overlaid(base: Mapping[str, Any], kept: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in base.items():
        if key == CLASS_DATES:
            out[key] = dict(kept.get(key) or {})
        elif isinstance(value, Mapping):
            out[key] = _overlaid(value, kept.get(key) or {})
        elif isinstance(value, list) and key in kept:
            out[key] = list(kept[key])
        else:
            out[key] = value
    return out


def entry_node(site: str, entry: Entry) -> Node:
    """What one entry adds to its leaf: its contribution's summary alone, its monthly
    steps, and 1 if it counts here (nothing when it does not)."""
    if entry["c"] is None:
        return {"s": {}, "m": {}, "k": 0}
    steps: dict[str, Any] = {}
    for month, delta, changed in read_steps(entry.get("m")):
        into = steps.setdefault(month, {"d": {}, "c": 0})
        for name, change in delta.items():
            into["d"][name] = into["d"].get(name, 0) + change
        into["c"] += int(bool(changed))
    return {"s": exact(fold_counted(site, [entry])), "m": steps, "k": 1}


def combine(nodes: Iterable[Mapping[str, Any]], minus: Iterable[Mapping[str, Any]] = ()) -> Node:
    """The sum of `nodes` less the sum of `minus` (exact), sparse."""
    total: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    counted = 0
    for node, sign in [*((n, 1) for n in nodes), *((n, -1) for n in minus)]:
        add(total, node.get("s") or {}, sign)
        counted += sign * int(node.get("k", 0))
        for month, step in (node.get("m") or {}).items():
            into = steps.setdefault(month, {"d": {}, "c": 0})
            for name, change in step["d"].items():
                into["d"][name] = into["d"].get(name, 0) + sign * change
            into["c"] += sign * step["c"]
    return {"s": sparse(total), "m": _trimmed(steps), "k": counted}


def leaf_node(site: str, entries: Iterable[Entry]) -> Node:
    """A leaf's sums from all its entries."""
    return combine(entry_node(site, entry) for entry in entries)


def _trimmed(steps: dict[str, Any]) -> dict[str, Any]:
    """Steps without the changes that cancelled out (a month nothing changes in)."""
    out = {}
    for month in sorted(steps):
        delta = {name: change for name, change in steps[month]["d"].items() if change}
        if delta or steps[month]["c"]:
            out[month] = {"d": delta, "c": steps[month]["c"]}
    return out


def site_figures(site: str, leaves: Iterable[Mapping[str, Any]]) -> tuple[Summary, Any, int]:
    """The site's summary (every figure, zeros included), its monthly series
    (`months.fold_months`) and how many entries count there, from its leaves' sums."""
    root = combine(leaves)
    summary = rounded(add(zero(site), root["s"]))
    return summary, series_of(root["m"]), root["k"]


def series_of(steps_by_month: Mapping[str, Any]) -> Any:
    """A site's monthly series (`months.fold_months`) from its steps summed by month (the
    `m` of its exact sums): their running sum. A site document keeps those steps, not the
    series (a derived copy, rewritten for every later month whenever an earlier one moved),
    so readers fold it from them (`MongoGeneration.site_months`)."""
    steps = [[month, step["d"], bool(step["c"])] for month, step in steps_by_month.items()]
    return fold_months([steps] if steps else [])
