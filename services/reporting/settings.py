"""Settings of the reporting service alone (the shared ones are ibest.backbone.settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.tokens import Token, derived_id, read_tokens

Scope = Literal["read", "raw"]
SCOPES: tuple[Scope, ...] = ("read", "raw")


class ReportingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    tokens: str = Field(
        default="",
        alias="IBEST_REPORTING_TOKENS",
        description="Bearer tokens as id:token:scope entries separated by commas (token:scope "
        "still works; its id is then h- and the first 10 hex digits of the "
        "token's SHA-256); scope is read (published figures) or raw (also exact "
        "figures). None set: every request is refused.",
    )
    tokens_file: Path | None = Field(
        default=None,
        alias="IBEST_REPORTING_TOKENS_FILE",
        description="A secrets file with more entries (one per line or comma-separated).",
    )
    read_token_file: Path | None = Field(
        default=None,
        alias="IBEST_REPORTING_READ_TOKEN_FILE",
        description="A file holding one bare read-scope bearer token (the Docker secret "
        "Grafana's reporting data source also reads through $__file, so the two "
        "cannot drift apart); its id is `grafana`.",
    )
    snapshot_seconds: float = Field(
        default=5.0,
        gt=0,
        alias="IBEST_REPORTING_SNAPSHOT_SECONDS",
        description="Seconds between refreshes of the figures /metrics exports.",
    )

    protect_national: bool = Field(
        default=False,
        alias="IBEST_REPORTING_PROTECT_NATIONAL",
        description="Publish every national count (and the rates and means built on it) "
        "under trust-level control where, beside the trusts' published figures, "
        "it would let a suppressed trust figure be recovered by difference. Off: "
        "only the by-profession breakdowns are judged (headline national figures "
        "exact). For a publication built from few trusts.",
    )

    trusts_file: Path | None = Field(
        default=None,
        alias="IBEST_REPORTING_TRUSTS_FILE",
        description="The trusts file whose names the monthly report pack shows (default: "
        "deploy/trusts.yaml, which the service image carries).",
    )

    def token_list(self) -> list[Token]:
        """Parse the tokens; a malformed entry stops the service at start-up."""
        tokens = read_tokens(self.tokens, self.tokens_file, "IBEST_REPORTING_TOKENS", SCOPES)
        if self.read_token_file is not None:
            secret = self.read_token_file.read_text().strip()
            if not secret:
                raise ValueError(
                    f"IBEST_REPORTING_READ_TOKEN_FILE: {self.read_token_file} holds no token"
                )
            tokens.append(Token(derived_id(secret), secret, "read"))
        return tokens
