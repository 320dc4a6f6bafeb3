"""Bearer tokens with ids: parsed from settings, matched in constant time.

A token's id names it in the audit log and in logs without revealing the secret. Entries are
`id:token` (or `id:token:scope` where scopes apply); an entry without an id gets one derived
from the token (`h-` and the first 10 hex digits of its SHA-256), so older `token:scope`
settings keep working and keep a stable id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
TOKEN_SECRET = re.compile(r"[\x21-\x7e]+")
"""A secret is printable ASCII without spaces (it travels in an Authorization header)."""


@dataclass(frozen=True)
class Token:
    id: str
    secret: str = field(repr=False)
    scope: str = ""


def derived_id(secret: str) -> str:
    """The id of a token given without one: stable, and useless for guessing the token."""
    return "h-" + hashlib.sha256(secret.encode()).hexdigest()[:10]


def parse_tokens(text: str, variable: str, scopes: tuple[str, ...] = ()) -> list[Token]:
    """Parse comma-separated entries; a malformed entry raises ValueError naming the rule
    (never the secret). With `scopes`, each entry ends in `:<scope>`."""
    out: list[Token] = []
    form = "id:token:scope or token:scope" if scopes else "id:token or token"
    for n, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), 1):
        scope = ""
        rest = entry
        if scopes:
            rest, sep, scope = entry.rpartition(":")
            if not sep or scope not in scopes:
                raise ValueError(
                    f"{variable} entry {n}: the scope after the last ':' must be "
                    f"one of {', '.join(scopes)} (entries are {form})"
                )
        token_id, sep, secret = rest.partition(":")
        if not sep:
            token_id, secret = derived_id(rest), rest
        if not TOKEN_ID.fullmatch(token_id):
            raise ValueError(
                f"{variable} entry {n}: a token id is 1 to 64 letters, digits, "
                f"'.', '_' or '-', starting with a letter or digit ({form})"
            )
        if not TOKEN_SECRET.fullmatch(secret) or ":" in secret:
            raise ValueError(
                f"{variable} entry {n} ({token_id}): the token must be printable "
                f"ASCII without spaces, commas or ':' ({form})"
            )
        out.append(Token(token_id, secret, scope))
    ids = [t.id for t in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{variable}: token ids must be unique")
    return out


def read_tokens(
    value: str, file: Path | None, variable: str, scopes: tuple[str, ...] = ()
) -> list[Token]:
    """Tokens from the variable and from `<variable>_FILE` (a secrets file, one entry per
    line or comma-separated), together."""
    text = value
    if file is not None:
        text += "," + ",".join(file.read_text().split())
    return parse_tokens(text, variable, scopes)


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def matching(tokens: list[Token], given: str | None) -> Token | None:
    """The token whose secret is `given`; every token is compared, each in constant time."""
    found = None
    if given is None:
        return None
    for token in tokens:
        if hmac.compare_digest(token.secret.encode(), given.encode()):
            found = token
    return found
