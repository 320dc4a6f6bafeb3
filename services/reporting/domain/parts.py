"""A site's summary as a small tree of parts, so that an event's cost does not grow with
its site.

Each entity counted at a site belongs to one leaf of the site's tree, chosen by a hash of
the entity (`leaf_of`). A leaf keeps its entities' entries (`domain.counted`) and the sum of
what they count; a parent keeps the sum of its children; the site's summary is the sum at
the root. A batch rewrites only its entities' entries and the sums on their paths to the
root, whatever the size of the site, and no part grows beyond the share of the site its
hash gives it.

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

from services.reporting.domain.counted import Entry, fold_counted
from services.reporting.domain.figures import Summary
from services.reporting.domain.months import fold_months

LEVELS = 2
"""Hex digits of an entity's hash that name its leaf: 16 parents of 16 leaves per site."""
CLASS_DATES = "class_dates"
"""The one summary value that is not a sum: first and last class date (min and max)."""

Node = dict[str, Any]
"""What a part keeps: `s` its exact sum (a summary whose floats are partial-sum lists),
`m` its monthly steps summed by month ({month: {"d": {count: change}, "c": changes}}), and
`k` how many of its entries count somewhere here (`c` not None)."""


def entity_hash(kind: str, key: str) -> str:
    """A stable 20-hex-digit hash of an entity: its leaf and its field name in the leaf."""
    return hashlib.blake2b(f"{kind}/{key}".encode(), digest_size=10).hexdigest()


def part_id(site: str, digits: str) -> str:
    """The id of the part of `site` whose entities' hashes start with `digits`."""
    return f"{site}/{digits}"


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
    """A summary with every float replaced by its exact partial sums (a one-element list)."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping) and key != CLASS_DATES:
            out[key] = exact(value)
        elif isinstance(value, float):
            out[key] = [value]
        else:
            out[key] = value
    return out


def rounded(summary: Mapping[str, Any]) -> Summary:
    """The summary an exact sum stands for: each partial-sum list rounded with `fsum`."""
    out: Summary = {}
    for key, value in summary.items():
        if isinstance(value, Mapping) and key != CLASS_DATES:
            out[key] = rounded(value)
        elif isinstance(value, list):
            out[key] = math.fsum(value)
        else:
            out[key] = value
    return out


def add(total: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """`total` with the exact summary `more` added in (in place; returned)."""
    for key, value in more.items():
        have = total.get(key)
        if key == CLASS_DATES:
            if value is not None:
                total[key] = (
                    dict(value)
                    if have is None
                    else {
                        "first": min(have["first"], value["first"]),
                        "last": max(have["last"], value["last"]),
                    }
                )
            else:
                total.setdefault(key, None)
        elif isinstance(value, Mapping):
            total[key] = add(dict(have) if isinstance(have, Mapping) else {}, value)
        elif isinstance(value, str) or value is None:
            total.setdefault(key, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            total[key] = (have or 0) + value
        elif isinstance(value, list):
            total[key] = partials(value, have if isinstance(have, list) else None)
        else:
            raise TypeError(f"cannot add {key}={value!r} of a summary")
    return total


def zero(site: str) -> dict[str, Any]:
    """The exact summary of a site that counts nothing."""
    return exact(fold_counted(site, ()))


def leaf_node(site: str, entries: Iterable[Entry]) -> Node:
    """A leaf's sums from its entries: each counted entry's summary alone, added up."""
    total = zero(site)
    steps: dict[str, Any] = {}
    counted = 0
    for entry in entries:
        if entry["c"] is None:
            continue
        counted += 1
        add(total, exact(fold_counted(site, [entry])))
        for month, delta, changed in entry.get("m") or []:
            into = steps.setdefault(month, {"d": {}, "c": 0})
            for name, change in delta.items():
                into["d"][name] = into["d"].get(name, 0) + change
            into["c"] += int(bool(changed))
    return {"s": total, "m": _trimmed(steps), "k": counted}


def parent_node(site: str, children: Iterable[Mapping[str, Any]]) -> Node:
    """A part's sums from its children's."""
    total = zero(site)
    steps: dict[str, Any] = {}
    counted = 0
    for child in children:
        add(total, child.get("s") or {})
        counted += int(child.get("k", 0))
        for month, step in (child.get("m") or {}).items():
            into = steps.setdefault(month, {"d": {}, "c": 0})
            for name, change in step["d"].items():
                into["d"][name] = into["d"].get(name, 0) + change
            into["c"] += step["c"]
    return {"s": total, "m": _trimmed(steps), "k": counted}


def _trimmed(steps: dict[str, Any]) -> dict[str, Any]:
    """Steps without the changes that cancelled out (a month nothing changes in)."""
    out = {}
    for month in sorted(steps):
        delta = {name: change for name, change in steps[month]["d"].items() if change}
        if delta or steps[month]["c"]:
            out[month] = {"d": delta, "c": steps[month]["c"]}
    return out


def site_figures(root: Node) -> tuple[Summary, dict[str, Any] | None]:
    """The site's summary and monthly series (`months.fold_months`) from its root's sums."""
    steps = [[month, step["d"], bool(step["c"])] for month, step in sorted(root["m"].items())]
    return rounded(root["s"]), fold_months([steps] if steps else [])
