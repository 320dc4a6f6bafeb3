"""Service tokens: what a caller needs for any service route that changes state or reveals
a clinician or patient (enrolment, outcomes, notifications).

`IBEST_SERVICE_TOKENS="id:token,..."` (and/or `IBEST_SERVICE_TOKENS_FILE`, a secrets file)
lists them; each has an id (ibest.backbone.tokens) that the audit log records. The public
course catalogue, /healthz, /readyz and /metrics stay open. With no tokens configured every
guarded route answers 401.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ibest.backbone.tokens import Token, matching, read_tokens

log = logging.getLogger(__name__)
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="ServiceToken", description="A token from IBEST_SERVICE_TOKENS"
)


class ServiceTokenSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    tokens: str = Field(
        default="",
        alias="IBEST_SERVICE_TOKENS",
        description="Service tokens as id:token entries separated by commas "
        "(a bare token gets the id h-<first 10 hex of its "
        "SHA-256>).",
    )
    tokens_file: Path | None = Field(
        default=None,
        alias="IBEST_SERVICE_TOKENS_FILE",
        description="A secrets file with more entries.",
    )

    def token_list(self) -> list[Token]:
        return read_tokens(self.tokens, self.tokens_file, "IBEST_SERVICE_TOKENS")


class Refusal(BaseModel):
    detail: str


UNAUTHORISED: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Refusal,
        "description": "No bearer token, or an unknown one (with WWW-Authenticate: Bearer)",
    }
}


def service_token(service: str) -> Callable[..., Awaitable[Token]]:
    """A FastAPI dependency for `service`'s guarded routes, returning the caller's token.
    Tokens are read when the routes are built (at start-up): a malformed entry stops the
    service there."""
    tokens = ServiceTokenSettings().token_list()
    if not tokens:
        log.warning("IBEST_SERVICE_TOKENS is empty: %s's guarded routes will answer 401", service)

    async def guard(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Token:
        token = matching(tokens, credentials.credentials.strip() if credentials else None)
        if token is None:
            raise HTTPException(
                401,
                "a service token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": f'Bearer realm="ibest-{service}"'},
            )
        return token

    return guard
