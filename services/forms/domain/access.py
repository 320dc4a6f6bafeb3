"""Site-team keys, sessions, CSRF tokens and rate limits: the forms' credentials.

A site key reads `ibs_<12 hex id>_<43 random url-safe characters>` (256 bits): shown once,
stored only as SHA-256 (a random secret of that size needs no slow password hash), compared
in constant time, at most two active per site (rotation). A session is a random token in a
Secure, HttpOnly, SameSite=Strict cookie, stored hashed with its site and expiry.
A CSRF token is HMAC(key, credential || nonce): bound to the link or session it was served
with, so a page cannot be posted with another's token, and stateless.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.identifiers import SITE_CODE_PATTERN

KEY_PREFIX = "ibs"
MAX_ACTIVE_KEYS = 2
_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
_SITE = re.compile(SITE_CODE_PATTERN)


@dataclass(frozen=True)
class SiteKey:
    key_id: str
    site: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyRuleError(ValueError):
    """A key operation the rules forbid (not a site code, a third active key, unknown id)."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_site(site: str) -> None:
    if not _SITE.match(site):
        raise KeyRuleError(f"site {site!r} is not a 5-character ODS site code (e.g. RTH08)")


def mint_key(site: str, created_at: datetime) -> tuple[SiteKey, str]:
    check_site(site)
    key_id = secrets.token_hex(6)
    token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return SiteKey(key_id, site, digest(token), created_at), token


def key_id_of(token: str) -> str | None:
    match = _KEY.match(token.strip())
    return match.group(1) if match else None


def verify_key(token: str, key: SiteKey | None) -> bool:
    if key is None:
        hmac.compare_digest(digest(token), "0" * 64)
        return False
    return hmac.compare_digest(digest(token.strip()), key.key_hash) and key.active


def check_room_for_another(site: str, active: int) -> None:
    if active >= MAX_ACTIVE_KEYS:
        raise KeyRuleError(
            f"site {site} already has {active} active keys (the most is {MAX_ACTIVE_KEYS}, "
            "for rotation): revoke one with `ibest forms keys revoke <id>` first"
        )


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(key: bytes, credential: str, nonce: str) -> str:
    return hmac.new(key, f"{credential}\x1f{nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, credential: str, nonce: str, token: str) -> bool:
    if not nonce or not token or len(nonce) > 64:
        return False
    return hmac.compare_digest(csrf_token(key, credential, nonce), token)


def new_nonce() -> str:
    """A page's submission nonce: one per page served, so a double submit is one event."""
    return secrets.token_urlsafe(16)


class RateLimiter:
    """A token bucket per key (a client address, a link): `rate` per second up to `burst`.
    Held in the process; the least recently used buckets beyond `max_keys` are forgotten."""

    def __init__(
        self,
        rate: float,
        burst: int,
        timer: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.timer = timer
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self.timer()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed
