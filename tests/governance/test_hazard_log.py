"""The hazard log is bound to the suite: every hazard is controlled, every control names
tests the suite collects or configuration that exists, every risk is the matrix's, and the
safety case is generated from the log."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from typing import Any

import pytest

from ibest.safety import (
    LIKELIHOODS,
    MATRIX,
    ROOT,
    SAFETY_CASE,
    SEVERITIES,
    load,
    rating,
    render,
    risk,
)

LOG = load()
HAZARDS: list[dict[str, Any]] = LOG["hazards"]
REQUIRED = ("id", "title", "causes", "effect", "harm", "initial", "residual", "controls")


@cache
def collected() -> frozenset[str]:
    """Node ids the suite collects (one `pytest --collect-only` run, parameters dropped)."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return frozenset(line.split("[", 1)[0] for line in run.stdout.splitlines() if "::" in line)


def test_the_matrix_is_dcb0129s() -> None:
    assert tuple(MATRIX) == tuple(reversed(LIKELIHOODS))
    for likelihood, row in MATRIX.items():
        assert len(row) == len(SEVERITIES)
        assert list(row) == sorted(row), likelihood  # worse severity, never lower risk
    for s in range(len(SEVERITIES)):  # more likely, never lower risk
        column = [MATRIX[lk][s] for lk in LIKELIHOODS]
        assert column == sorted(column)
    assert risk("minor", "very low") == 1 and risk("catastrophic", "very high") == 5
    assert risk("major", "medium") == 3
    with pytest.raises(ValueError, match="severity must be one of"):
        risk("awful", "low")


def test_ids_are_unique_and_every_hazard_is_complete() -> None:
    ids = [h["id"] for h in HAZARDS]
    assert len(ids) == len(set(ids))
    for h in HAZARDS:
        missing = [k for k in REQUIRED if not h.get(k)]
        assert not missing, f"{h.get('id')}: missing {missing}"


@pytest.mark.parametrize("hazard", HAZARDS, ids=[h["id"] for h in HAZARDS])
def test_risks_are_computed_from_the_matrix(hazard: dict[str, Any]) -> None:
    for stage in ("initial", "residual"):
        r = rating(hazard[stage])
        assert r.risk == r.computed, (
            f"{hazard['id']} {stage}: risk {r.risk} but the matrix gives {r.computed} for "
            f"{r.severity} and {r.likelihood}"
        )
    initial, residual = rating(hazard["initial"]), rating(hazard["residual"])
    assert residual.risk <= initial.risk, f"{hazard['id']}: controls made the risk worse"


@pytest.mark.slow
@pytest.mark.parametrize("hazard", HAZARDS, ids=[h["id"] for h in HAZARDS])
def test_every_control_is_implemented_by_collected_tests_or_configuration(
    hazard: dict[str, Any],
) -> None:
    assert hazard["controls"], f"{hazard['id']} has no control"
    suite = collected()
    for control in hazard["controls"]:
        tests, config = control.get("tests", []), control.get("config", [])
        assert tests or config, f"{hazard['id']}: {control['control']!r} names no evidence"
        for node in tests:
            assert node in suite, f"{hazard['id']}: {node} is not collected by the suite"
        for item in config:
            path = ROOT / item["file"]
            assert path.is_file(), f"{hazard['id']}: {item['file']} does not exist"
            if item.get("setting"):
                assert item["setting"] in path.read_text(), (
                    f"{hazard['id']}: {item['setting']} is not in {item['file']}"
                )


def test_the_disclosure_risks_record_a_decision() -> None:
    titles = {h["id"]: h for h in HAZARDS}
    for hid in ("HAZ-007", "HAZ-008"):
        assert titles[hid].get("decision"), hid


def test_the_safety_case_is_generated_from_the_log() -> None:
    assert SAFETY_CASE.read_text() == render(LOG), "run: python -m ibest.safety"
