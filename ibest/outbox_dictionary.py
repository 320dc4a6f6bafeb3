"""`python -m ibest.outbox_dictionary N`: write outbox dictionary version N from the contract.

The stamped outboxes compress each derived event's body against a preset dictionary
(`ibest.backbone.outbox_codec`). What goes in it is what those bodies repeat, taken from
the contract so that it follows it: every payload field name, the timepoints and measure
names, every event type, and one example body (`shared.examples`) of each derived event
as the service that derives it builds it (its source `/services/<name>`, from the
declarations in ibest/registry.py). Deflate codes a nearer match more cheaply, so the
examples come last, the outcomes' (the most frequent) at the end.

A version once written is never rewritten (entries compressed against it must stay
readable; tests pin each file's SHA-256): when the contract's derived events change, write
version N+1 with this command and make it `outbox_codec.DICTIONARY`.
"""

from __future__ import annotations

import json
import sys

from ibest import registry
from ibest.backbone.outbox_codec import dictionary_path
from shared.envelope import BY_NAME, EVENT_TYPES
from shared.events import MeasureOutcome
from shared.examples import example
from shared.followup import Timepoint
from shared.measures import Measure

ORDER = ("notifications", "enrolment", "outcomes")
"""Whose example bodies come first: the last is nearest, so the cheapest to refer to."""


def source_of(service: str) -> str:
    """The `source` a service's derived events carry."""
    return f"/services/{service}"


def build() -> list[str]:
    """The dictionary's strings, from the contract and the declarations as they are now."""
    fields = {f for t in EVENT_TYPES for f in t.payload.model_fields}
    fields |= set(MeasureOutcome.model_fields)
    parts = [f'"{f}":' for f in sorted(fields)]
    parts += [f'"{t.value}"' for t in Timepoint] + [f'"{m.value}":' for m in Measure]
    parts += [f'"type":"{t.ce_type}"' for t in EVENT_TYPES]
    publishers = sorted(
        (s for s in registry.SERVICES if s.publishes),
        key=lambda s: ORDER.index(s.name) if s.name in ORDER else -1,
    )
    for service in publishers:
        for name in service.publishes:
            body = json.loads(example(BY_NAME[name]).to_json())
            body["source"] = source_of(service.name)
            parts.append(json.dumps(body, separators=(",", ":")))
    return parts


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m ibest.outbox_dictionary N  (a new version)", file=sys.stderr)
        return 2
    path = dictionary_path(int(argv[0]))
    if path.exists():
        print(f"{path} exists: a dictionary is never rewritten", file=sys.stderr)
        return 1
    path.write_text(json.dumps(build(), indent=0) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
