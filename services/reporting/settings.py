"""Settings of the reporting service alone (the shared ones are ibest.backbone.settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Scope = Literal["read", "raw"]
SCOPES: tuple[Scope, ...] = ("read", "raw")


class ReportingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    tokens: str = Field(
        default="", alias="IBEST_REPORTING_TOKENS",
        description="Bearer tokens as token:scope pairs separated by commas; scope is read "
                    "(published figures) or raw (also exact figures). None set: every request "
                    "is refused.",
    )
    read_token_file: str = Field(
        default="", alias="IBEST_REPORTING_READ_TOKEN_FILE",
        description="A file holding one more read-scope bearer token (the Docker secret "
                    "Grafana's data source also reads, so the two cannot drift apart).",
    )
    snapshot_seconds: float = Field(
        default=5.0, gt=0, alias="IBEST_REPORTING_SNAPSHOT_SECONDS",
        description="Seconds between refreshes of the figures /metrics exports.",
    )

    def token_scopes(self) -> dict[str, Scope]:
        """Parse IBEST_REPORTING_TOKENS; a malformed entry stops the service at start-up."""
        out: dict[str, Scope] = {}
        for entry in filter(None, (e.strip() for e in self.tokens.split(","))):
            token, sep, scope = entry.rpartition(":")
            if not sep or not token or scope not in SCOPES:
                raise ValueError("IBEST_REPORTING_TOKENS entries must be token:read or "
                                 "token:raw (the entry's scope is not one of these)")
            out[token] = "raw" if scope == "raw" else "read"
        if self.read_token_file:
            token = Path(self.read_token_file).read_text().strip()
            if not token:
                raise ValueError(f"IBEST_REPORTING_READ_TOKEN_FILE: {self.read_token_file} "
                                 "holds no token")
            out.setdefault(token, "read")
        return out
