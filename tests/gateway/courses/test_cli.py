"""`ibest import futurelearn` refuses plainly when a key it needs is not set."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ibest.backbone.settings import Settings
from services.gateway.courses.cli import futurelearn_command


async def test_the_import_without_the_platform_id_key_says_so_and_publishes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A plain refusal naming the setting, before anything connects (not a traceback)."""
    monkeypatch.delenv("IBEST_PLATFORM_ID_KEY_FILE", raising=False)
    args = argparse.Namespace(directory=tmp_path, dry_run=False, learners_only=False)
    assert await futurelearn_command(args, Settings()) == 1
    assert "IBEST_PLATFORM_ID_KEY_FILE is not set" in capsys.readouterr().out
