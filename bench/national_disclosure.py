"""How often an exact national figure would pin down a trust's "*" by difference, at
national scale (hazard HAZ-007; the numbers in docs/safety/hazard-log.yaml).

    .venv/bin/python -m bench.national_disclosure [--trusts 154] [--rollouts 20]

Pure: per simulated rollout, every trust gets a random number of clinicians (0 to 60, with
many small trusts), each of a random profession (physiotherapists most, doctors and
"other" rare), progressing through the stages at typical rates. For each national count
(the five stage totals and the 30 by-profession cells) it computes, beside every trust's
published cells, the fewest possible values left to any trust's "*" if the national count
were published exactly (disclosure.recoverable's interval arithmetic).
"""

from __future__ import annotations

import argparse
import random
from datetime import date

from services.reporting.domain.disclosure import (
    MIN_POSSIBLE_VALUES,
    SUPPRESSED,
    SUPPRESSED_RANGE,
    Controlled,
    bounds,
    flat,
    published_figures,
)
from services.reporting.domain.figures import STAGES, Totals, raw_figures

TODAY = date(2026, 6, 1)
SIZES = (0, 1, 2, 3, 5, 8, 12, 20, 30, 45, 60)
WEIGHTS = {
    "physiotherapist": 6.0,
    "nurse": 2.0,
    "occupational_therapist": 1.0,
    "psychologist": 1.0,
    "doctor": 0.3,
    "other": 0.3,
}
# Chance of reaching the next stage: started, completed, intending, delivering.
NEXT = {"started": 0.8, "completed": 0.7, "intending": 0.6, "delivering": 0.4}


def fewest_values(total: int, parts: list[Controlled]) -> int | None:
    """The fewest possible values any "*" part keeps beside an exact `total` (None: no
    part is "*")."""
    ranges = [bounds(p) for p in parts]
    low_sum, high_sum = sum(lo for lo, _ in ranges), sum(hi for _, hi in ranges)
    fewest: int | None = None
    for part, (lo, hi) in zip(parts, ranges, strict=True):
        if part != SUPPRESSED:
            continue
        least = max(SUPPRESSED_RANGE[0], total - (high_sum - hi))
        most = min(SUPPRESSED_RANGE[1], total - (low_sum - lo))
        n = most - least + 1
        fewest = n if fewest is None else min(fewest, n)
    return fewest


def rollout(rng: random.Random, trusts: int) -> list[Totals]:
    out = []
    for _ in range(trusts):
        t = Totals()
        for _ in range(rng.choice(SIZES)):
            profession = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
            t.clinicians["enrolled"][profession] += 1
            if rng.random() < NEXT["started"]:
                t.clinicians["started"][profession] += 1
                if rng.random() < NEXT["completed"]:
                    t.clinicians["completed"][profession] += 1
                    for stage in ("intending", "delivering"):
                        if rng.random() < NEXT[stage]:
                            t.clinicians[stage][profession] += 1
        out.append(t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trusts", type=int, default=154)
    parser.add_argument("--rollouts", type=int, default=20)
    args = parser.parse_args()
    pinned = {"headline": 0, "by_profession": 0}
    judged = {"headline": 0, "by_profession": 0}
    fewest_headline: int | None = None
    for seed in range(args.rollouts):
        trusts = rollout(random.Random(seed), args.trusts)
        whole = Totals()
        for t in trusts:
            for stage in STAGES:
                for profession, n in t.clinicians[stage].items():
                    whole.clinicians[stage][profession] += n
        national = flat(raw_figures(whole, TODAY, with_sites_running=True))
        published = [flat(published_figures(t, TODAY, with_sites_running=True)) for t in trusts]
        names = [f"clinicians_{s}" for s in STAGES] + [
            n for n in national if "_by_profession." in n
        ]
        for name in names:
            family = "by_profession" if "_by_profession." in name else "headline"
            judged[family] += 1
            fewest = fewest_values(national[name], [p[name] for p in published])
            if fewest is None:
                continue
            if family == "headline":
                fewest_headline = (
                    fewest if fewest_headline is None else min(fewest_headline, fewest)
                )
            if fewest < MIN_POSSIBLE_VALUES:
                pinned[family] += 1
    print(f"{args.trusts} trusts, {args.rollouts} simulated rollouts:")
    print(
        f"  headline stage counts that would pin a trust's '*': {pinned['headline']} of "
        f"{judged['headline']} (fewest possible values left to any '*': "
        f"{fewest_headline})"
    )
    print(
        f"  by-profession cells that would pin a trust's '*': {pinned['by_profession']} "
        f"of {judged['by_profession']}"
    )


if __name__ == "__main__":
    main()
