"""Keyed hashes: the programme's clinician pseudonym, opaque references, platform-made ids.

Why keyed (HMAC-SHA256) and not a plain hash: a plain hash of a registration number, a
learner id or an event's inputs can be recomputed by anyone who can guess the input, so it
would re-identify a person (registration numbers are public) or let a sender compute, and
pre-empt, an id the platform is about to make. Under a key only its holders can.

Pure: the key is passed in. Where each key lives and who holds it is the caller's setting
(docs/identifiers.md); nothing here reads a file or the environment.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_SEPARATOR = "\x1f"  # ASCII unit separator: no part can contain it, so parts never run together


def normalise_registration_number(raw: str) -> str:
    """A professional registration number as the pseudonym hashes it: upper-cased, with every
    space removed (`ph 123 456` and `PH123456` are the same person)."""
    return _SPACES.sub("", raw).upper()


def _digest(key: bytes, parts: tuple[str, ...]) -> bytes:
    if not key:
        raise ValueError("a keyed hash needs a non-empty key")
    return hmac.new(key, _SEPARATOR.join(parts).encode("utf-8"), hashlib.sha256).digest()


def clinician_pseudonym(key: bytes, registration_number: str) -> str:
    """The programme's clinician reference (domain.md, Identifiers): HMAC-SHA256 under the
    programme key of the normalised registration number, as its first 32 hex characters.
    Every system that holds the key derives the same reference for the same clinician."""
    number = normalise_registration_number(registration_number)
    if not number:
        raise ValueError("a registration number is needed for the clinician pseudonym")
    return hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def keyed_reference(key: bytes, *parts: str) -> str:
    """An opaque reference for something only the key holder can link back (a learner id with
    no registration number, say): 32 hex characters, within the contract's reference
    pattern. `parts` should name what is hashed (`"learner", run, learner_id`) so two kinds of
    input never share a reference."""
    return _digest(key, parts).hex()[:32]


def keyed_event_id(key: bytes, *parts: str) -> uuid.UUID:
    """An event id the platform makes, deterministic in `parts` (so re-making it after a
    crash gives the same id, a harmless duplicate) but not computable without the key (so no
    sender can use it first). Shaped as a version-5 UUID, as the contract's ids are UUIDs."""
    return uuid.UUID(bytes=_digest(key, parts)[:16], version=5)


def normalise_local_id(raw: str) -> str:
    """A trust's local patient id as the patient reference hashes it: upper-cased, with every
    space and separator (anything but a letter or digit) removed, so `rth-001 234` and
    `RTH001234` are the same patient."""
    return _NOT_ALNUM.sub("", raw).upper()


def patient_reference(trust_key: bytes, local_id: str) -> str:
    """The recipe for a patient reference (docs/identifiers.md): HMAC-SHA256 under the
    trust's own key of the normalised local id, as its first 32 hex characters. Within the
    contract's reference pattern, and never an NHS number (those are 10 digits and nothing
    else but separators; this is 32 characters with no separators)."""
    number = normalise_local_id(local_id)
    if not number:
        raise ValueError("a local patient id is needed for the patient reference")
    if not trust_key:
        raise ValueError("a keyed hash needs a non-empty key")
    return hmac.new(trust_key, number.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
