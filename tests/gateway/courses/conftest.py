"""The programme key for the course-platform tests (a file, as in production)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway.courses.settings import CourseSettings, local_clinician_key


@pytest.fixture
def course_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CourseSettings:
    """Course settings over a fresh key file (also in the environment, for the CLI)."""
    path = local_clinician_key(tmp_path / "secrets")
    monkeypatch.setenv("IBEST_CLINICIAN_KEY_FILE", str(path))
    return CourseSettings(IBEST_CLINICIAN_KEY_FILE=path, IBEST_COURSE_IMPORT_METRICS_SECONDS=0.2)


@pytest.fixture
def key(course_settings: CourseSettings) -> bytes:
    found = course_settings.clinician_key()
    assert found
    return found
