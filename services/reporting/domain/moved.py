"""A level's totals moved by the sites that changed, instead of summed again from every site.

A batch changes the summaries of a few sites; the national totals (and a trust's) are then
the previous totals less those sites' old summaries plus their new ones (`figures.add_site`,
the same addition `figures.total` makes). Counts are integers, so they move exactly. A float
total is kept as floats whose exact sum it is (each site's value, or its negation for a site
taken out) and rounded once with `math.fsum`, so it is bit for bit what summing every site
afresh gives; the floats are folded into Shewchuk's exact partial sums (`parts.partials`, as
the site sums are kept) at every move, so they stay a handful however long totals keep moving.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import replace

from services.reporting.domain.figures import OutcomeTotals, Summary, Totals, add_site, tidy
from services.reporting.domain.parts import partials

Change = tuple[Summary | None, Summary | None]
"""One site's summary before and after a change (None: the site was not reported before,
or is not any more)."""


def moved(before: Totals, changes: Iterable[Change]) -> Totals:
    """`before` (the totals of some sites) with each change applied in order: the old
    summary taken out, the new one put in. `before` is left as it was (a previous view's
    answers may still read it); equal to `figures.total` of the sites as they are now."""
    t = copy.deepcopy(replace(before, outcomes={}))
    t.outcomes = {
        key: OutcomeTotals(o.n, partials(o.changes), o.improved, partials(o.squares))
        for key, o in before.outcomes.items()
    }  # not a deep copy of each site's floats (thousands, nationally, after `total`)
    for old, new in changes:
        if old is not None:
            add_site(t, old, -1)
        if new is not None:
            add_site(t, new)
    for o in t.outcomes.values():
        o.changes = partials(o.changes)
        o.squares = partials(o.squares)
    return tidy(t)
