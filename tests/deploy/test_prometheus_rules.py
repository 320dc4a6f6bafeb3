"""Alert and recording rules: valid, and behaving as their promtool unit tests say."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules"
TESTS = ROOT / "deploy/prometheus/tests"


def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, (
        "promtool is not installed: `apt-get install -y prometheus` "
        "(Debian's package); the alert rules cannot be checked without it"
    )
    return promtool


def test_rules_and_config_are_valid() -> None:
    promtool = _promtool()
    for argv in (
        [promtool, "check", "rules", *map(str, sorted(RULES.glob("*.yml")))],
        [
            promtool,
            "check",
            "config",
            "--syntax-only",
            str(ROOT / "deploy/prometheus/prometheus.yml"),
        ],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_alert_rules_pass_their_unit_tests() -> None:
    tests = sorted(TESTS.glob("*.yml"))
    assert tests, "no promtool rule tests under deploy/prometheus/tests/"
    result = subprocess.run(
        [_promtool(), "test", "rules", *map(str, tests)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_the_issue_asks_for_exists() -> None:
    text = "\n".join(p.read_text() for p in RULES.glob("*.yml"))
    for alert in (
        "IbestServiceDown",
        "IbestConsumerLagGrowing",
        "IbestConsumerStalled",
        "IbestDeadLettersGrowing",
        "IbestHandlerErrorRatioHigh",
        "IbestReportsStale",
        "IbestTrustShareFilling",
        "IbestTrustShareExhausted",
    ):
        assert f"alert: {alert}" in text
        assert f"alertname: {alert}" in "\n".join(p.read_text() for p in TESTS.glob("*.yml")), (
            f"{alert} has no promtool unit test"
        )
