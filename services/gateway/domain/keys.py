"""API keys: high-entropy bearer tokens, stored only as hashes, at most two active per trust.

A key reads `ibk_<key id>_<secret>`. The key id is public (it appears in `ibest gateway keys
list` and in logs), the secret is shown once, at creation. A high-entropy random secret
needs no slow password hash: SHA-256 of the whole key is enough, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from shared.identifiers import TRUST_CODE_PATTERN

KEY_PREFIX = "ibk"
MAX_ACTIVE_KEYS = 2
"""Two at a time: the old and the new while a trust rotates its key."""
_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
_TRUST = re.compile(TRUST_CODE_PATTERN)
COURSE_PLATFORM = "course-platform:"
"""A course platform's key holds `course-platform:<name>` where a trust's holds its code: it
may send only training events, for any trust (services/gateway/courses)."""
_PLATFORM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class ApiKey:
    """A stored key: never the key itself, only its hash."""

    key_id: str
    trust: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def course_platform(self) -> str | None:
        """The course platform's name for a course-platform key, else None (a trust's)."""
        return (
            self.trust.removeprefix(COURSE_PLATFORM)
            if self.trust.startswith(COURSE_PLATFORM)
            else None
        )


class KeyRuleError(ValueError):
    """A key operation the rules forbid (unknown trust format, a third active key)."""


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint_key(trust: str, created_at: datetime) -> tuple[ApiKey, str]:
    """A new key for `trust`: the stored record and the token to show once."""
    check_trust(trust)
    key_id = secrets.token_hex(6)
    token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return ApiKey(key_id, trust, hash_key(token), created_at), token


def key_id_of(token: str) -> str | None:
    """The key id a presented token names, or None if it is not shaped like our keys."""
    match = _KEY.match(token)
    return match.group(1) if match else None


def verify(token: str, key: ApiKey | None) -> bool:
    """True when `token` is `key`'s and the key is active (constant-time comparison)."""
    if key is None:
        # Compare anyway, so an unknown id takes as long as a wrong secret.
        hmac.compare_digest(hash_key(token), "0" * 64)
        return False
    return hmac.compare_digest(hash_key(token), key.key_hash) and key.active


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def course_platform_holder(name: str) -> str:
    """What a course platform's key holds in place of a trust code."""
    if not _PLATFORM_NAME.match(name):
        raise KeyRuleError(
            f"course platform {name!r}: lower-case letters, digits and - only (e.g. futurelearn)"
        )
    return f"{COURSE_PLATFORM}{name}"


def check_trust(trust: str) -> None:
    if trust.startswith(COURSE_PLATFORM):
        course_platform_holder(trust.removeprefix(COURSE_PLATFORM))
        return
    if not _TRUST.match(trust):
        raise KeyRuleError(f"trust {trust!r} is not a 3-character ODS trust code (e.g. RTH)")


def check_room_for_another(trust: str, active: int) -> None:
    """A trust holds at most MAX_ACTIVE_KEYS active keys: revoke one before adding."""
    if active >= MAX_ACTIVE_KEYS:
        raise KeyRuleError(
            f"trust {trust} already has {active} active keys (the most is {MAX_ACTIVE_KEYS}, "
            "for rotation): revoke one with `ibest gateway keys revoke <id>` first"
        )
