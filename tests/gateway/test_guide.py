"""docs/integrating.md's walkthrough (validate, send, read rejections, resend), run as
written with curl against the real gateway, each answer checked against the one the guide
shows (times aside): the guide's examples cannot drift from the code."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import KeyMaker

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integrating.md"
UNCHECKED = {"received_at", "since"}


def walkthrough() -> list[tuple[str, Any]]:
    """Each curl command of section 2 with the answer shown after it."""
    text = GUIDE.read_text()
    section = text[text.index("## 2. ") : text.index("\n## ", text.index("## 2. ") + 5)]
    blocks = re.findall(r"```(bash|json)\n(.*?)```", section, re.DOTALL)
    steps = []
    for (kind, body), (next_kind, answer) in itertools.pairwise(blocks):
        if kind == "bash" and "curl" in body and next_kind == "json":
            steps.append((body, json.loads(answer)))
    return steps


def shown_in(expected: Any, actual: Any, where: str = "") -> None:
    """Everything the guide shows is in the answer: objects' keys with equal values, lists
    as an in-order subsequence."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), (where, actual)
        for key, value in expected.items():
            if key not in UNCHECKED:
                assert key in actual, (where, key, actual)
                shown_in(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), (where, actual)
        remaining = iter(enumerate(actual))
        for item in expected:
            for _, candidate in remaining:
                try:
                    shown_in(item, candidate, where)
                    break
                except AssertionError:
                    continue
            else:
                raise AssertionError((where, "not found in order", item, actual))
    else:
        assert expected == actual, (where, expected, actual)


def test_the_guide_has_the_whole_walkthrough() -> None:
    urls = [re.search(r'"\$GATEWAY(/v1/[a-z/]+)', cmd) for cmd, _ in walkthrough()]
    assert [u.group(1) if u else None for u in urls] == [
        "/v1/events/validate",
        "/v1/events",
        "/v1/rejections",
        "/v1/events",
    ]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by scripts/setup")
async def test_the_walkthrough_runs_as_written_against_the_gateway(
    gateway: str, new_key: KeyMaker
) -> None:
    key = (await new_key("RTH")).removeprefix("Bearer ")
    for command, answer in walkthrough():
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            command,
            env={"GATEWAY": gateway, "KEY": key, "PATH": "/usr/bin:/bin:/usr/local/bin"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, (command, err.decode())
        shown_in(answer, json.loads(out), command.splitlines()[0])
