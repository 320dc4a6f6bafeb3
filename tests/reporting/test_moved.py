"""Totals moved by what changed (`domain.moved`, issue 26) are the totals summed afresh:
counts equal, float sums bit for bit, and so every figure, exact or published."""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

from services.reporting.domain.disclosure import published_figures
from services.reporting.domain.figures import (
    FOLLOW_UP_NAMES,
    MEASURE_NAMES,
    OUTCOME_TIMEPOINTS,
    PROFESSIONS,
    STAGES,
    Summary,
    Totals,
    fold_site,
    raw_figures,
    total,
)
from services.reporting.domain.moved import Change, moved

TODAY = date(2025, 9, 1)


def summary(rng: random.Random, site: str) -> Summary:
    """A site's summary from a few random clinicians, patients (awkward float changes, so
    the order of a float sum would show) and classes."""
    clinicians = [
        {"profession": rng.choice(PROFESSIONS), **{s: rng.random() < 0.6 for s in STAGES}}
        for _ in range(rng.randrange(0, 6))
    ]
    patients = []
    for _ in range(rng.randrange(0, 8)):
        baseline = date(2025, 1, 1) + timedelta(days=rng.randrange(200))
        outcomes = {
            tp: {
                m: {"change": rng.uniform(-1e3, 1e3) * 10 ** rng.randrange(-8, 8), "improved": True}
                for m in rng.sample(MEASURE_NAMES, 2)
            }
            for tp in OUTCOME_TIMEPOINTS
            if rng.random() < 0.5
        }
        patients.append(
            {
                "recorded": {tp: rng.random() < 0.5 for tp in FOLLOW_UP_NAMES},
                "due": {
                    tp: (baseline + timedelta(days=90 * (i + 1))).isoformat()
                    for i, tp in enumerate(FOLLOW_UP_NAMES)
                },
                "outcomes": outcomes,
            }
        )
    classes = [
        {"date": (date(2025, 1, 1) + timedelta(days=rng.randrange(300))).isoformat()}
        for _ in range(rng.randrange(0, 3))
    ]
    return fold_site(site, site[:3], clinicians, patients, classes)


def canonical(t: Totals) -> dict[str, Any]:
    """The totals as the figures read them: each float sum as the float it rounds to
    (`hex`: bit for bit), the per-site parts it is kept as left out."""
    out = asdict(t)
    out["outcomes"] = {
        key: (o.n, o.improved, o.sum_change.hex(), o.sum_sq_change.hex())
        for key, o in t.outcomes.items()
    }
    return out


def test_totals_moved_by_random_changes_are_the_totals_summed_afresh() -> None:
    rng = random.Random(26)
    trusts = ["RTH", "RXF", "R0A", "RYJ"]
    sites = {f"{t}{n:02d}": summary(rng, f"{t}{n:02d}") for t in trusts for n in range(1, 9)}
    national = total(sites.values())
    for _ in range(40):
        changes: list[Change] = []
        for _ in range(rng.randrange(1, 5)):
            site = f"{rng.choice(trusts)}{rng.randrange(1, 11):02d}"
            old = sites.get(site)
            new = None if old is not None and rng.random() < 0.15 else summary(rng, site)
            if new is None:
                del sites[site]
            else:
                sites[site] = new
            changes.append((old, new))
        before = canonical(national)
        moved_national = moved(national, changes)
        assert canonical(national) == before, "the previous totals are left as they were"
        national = moved_national
        afresh = total(sites.values())
        assert canonical(national) == canonical(afresh)
        for figures in (raw_figures, published_figures):
            assert figures(national, TODAY, with_sites_running=True) == figures(
                afresh, TODAY, with_sites_running=True
            )
    # The float sums are kept short however long they keep moving.
    assert max(len(o.changes) for o in national.outcomes.values()) <= 4
