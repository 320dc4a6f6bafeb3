"""Settings of the gateway's course-platform part (docs/configuration.md)."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.secrets import read_secret


class CourseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    clinician_key_file: Path | None = Field(
        default=None,
        alias="IBEST_CLINICIAN_KEY_FILE",
        description="File holding the programme key (a Docker secret): the clinician "
        "pseudonym of a registration number, learner keys and the platform-made event ids "
        "of imported facts and xAPI statements are HMAC-SHA256 under it. Without it the "
        "import refuses to run and /xapi/statements answers 503. `ibest up` makes a local one.",
    )
    import_metrics_seconds: float = Field(
        default=60.0,
        gt=0,
        alias="IBEST_COURSE_IMPORT_METRICS_SECONDS",
        description="How often the gateway re-reads the latest import reports for /metrics.",
    )

    def clinician_key(self) -> bytes | None:
        """The programme key, or None when no file is configured (SecretError if unusable)."""
        if self.clinician_key_file is None:
            return None
        return read_secret(self.clinician_key_file, "IBEST_CLINICIAN_KEY_FILE").encode()


def local_clinician_key(directory: Path) -> Path:
    """A programme key for a local stack (`ibest up`) or tests, made once and kept."""
    path = directory / "clinician.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path
