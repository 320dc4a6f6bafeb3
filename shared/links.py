"""Signed form links: a token that names a form and a clinician, readable and checkable only
with the forms' link secret (domain.md, "Where the data is born").

Why signed and sealed: a link is a credential (whoever holds it answers for that clinician),
so nobody may make one for another clinician (the MAC) and the clinician's reference never
appears in clear in a URL, a proxy log or a browser history (the payload is encrypted).
Pure and standard library only, so the notifications service builds the very links the forms
service checks without importing it; the secrets are passed in (read from files by each).

Construction (encrypt-then-MAC, stdlib only): from each secret two keys are derived with
HMAC-SHA256 (`enc`, `mac`); the payload is XORed with an HMAC-SHA256 keystream over a random
12-byte nonce and a block counter; the tag is the first 16 bytes of HMAC-SHA256(mac key,
version || nonce || ciphertext). Token = `f1.` + base64url(nonce || ciphertext || tag).
Rotation: `verify_link` accepts any of the secrets it is given (the current and the previous).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

VERSION = "f1"
_NONCE = 12
_TAG = 16
_SEP = "\x1f"
MAX_TOKEN_CHARS = 400
"""Longer tokens are refused before any work (a link token is about 110 characters)."""


class ClinicianForm(StrEnum):
    """The clinicians' forms a link can open."""

    INTENTION = "intention"
    DELIVERY_MONTH_4 = "delivery_month_4"
    DELIVERY_MONTH_12 = "delivery_month_12"


@dataclass(frozen=True)
class LinkClaims:
    """What a link names: the form, the clinician and when it was made (whole seconds, UTC;
    a revocation refuses links made before it)."""

    form: ClinicianForm
    clinician_ref: str
    issued_at: datetime


class LinkError(ValueError):
    """The token is not a link this platform made with a secret it holds (forged, altered,
    truncated or made with a retired secret)."""


def _keys(secret: bytes) -> tuple[bytes, bytes]:
    if not secret:
        raise ValueError("a link secret must not be empty")
    return (
        hmac.new(secret, b"ibest-forms-link-enc", hashlib.sha256).digest(),
        hmac.new(secret, b"ibest-forms-link-mac", hashlib.sha256).digest(),
    )


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        counter += 1
    return bytes(out[:length])


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def _tag(mac_key: bytes, body: bytes) -> bytes:
    return hmac.new(mac_key, VERSION.encode() + body, hashlib.sha256).digest()[:_TAG]


def sign_link(secret: bytes, claims: LinkClaims, nonce: bytes | None = None) -> str:
    """The token for `claims` under `secret` (a fresh random nonce unless one is given)."""
    enc, mac = _keys(secret)
    nonce = nonce if nonce is not None else secrets.token_bytes(_NONCE)
    issued = int(claims.issued_at.timestamp())
    plain = _SEP.join((claims.form.value, claims.clinician_ref, str(issued))).encode()
    body = nonce + _xor(plain, _keystream(enc, nonce, len(plain)))
    return f"{VERSION}.{_encode(body + _tag(mac, body))}"


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def verify_link(secrets_: tuple[bytes, ...], token: str) -> LinkClaims:
    """The claims of `token` if one of `secrets_` made it; else LinkError. The tag is
    compared in constant time before anything is decrypted."""
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(f"{VERSION}."):
        raise LinkError("not a form link")
    text = token[len(VERSION) + 1 :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise LinkError("not a form link") from None
    if len(raw) <= _NONCE + _TAG or _encode(raw) != text:
        # Only the canonical spelling: a changed last character that alters only unused
        # base64 bits is an altered link too.
        raise LinkError("not a form link")
    body, tag = raw[:-_TAG], raw[-_TAG:]
    for secret in secrets_:
        enc, mac = _keys(secret)
        if hmac.compare_digest(_tag(mac, body), tag):
            nonce, cipher = body[:_NONCE], body[_NONCE:]
            return _claims(_xor(cipher, _keystream(enc, nonce, len(cipher))))
    raise LinkError("the link's signature does not match")


def _claims(plain: bytes) -> LinkClaims:
    try:
        form, ref, issued = plain.decode().split(_SEP)
        return LinkClaims(ClinicianForm(form), ref, datetime.fromtimestamp(int(issued), UTC))
    except (UnicodeDecodeError, ValueError):
        raise LinkError("the link's contents are not a form link") from None


def clinician_link(base_url: str, secret: bytes, claims: LinkClaims) -> str:
    """The full URL a clinician follows: `<base>/c/<token>`."""
    return f"{base_url.rstrip('/')}/c/{sign_link(secret, claims)}"
