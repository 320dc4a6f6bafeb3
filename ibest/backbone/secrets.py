"""Secrets come from files (Docker secrets), never from environment variables or URLs.

A value that is still a placeholder (`change-me`, an example) or too short to be a random
secret stops the process at start-up: a deployment must not run on a guessable password.
"""

from __future__ import annotations

import re
from pathlib import Path

MIN_SECRET_CHARS = 16
PLACEHOLDER = re.compile(
    r"change[-_ ]?me|replace[-_ ]?me|example|placeholder|secret|password", re.IGNORECASE
)


class SecretError(ValueError):
    """A secret file is missing, empty, a placeholder or too short."""


def check_secret(value: str, what: str) -> str:
    """`value` if it looks like a generated secret; otherwise a SecretError naming `what`."""
    if PLACEHOLDER.search(value):
        raise SecretError(
            f"{what} is a placeholder ({value[:12]!r}...): generate it "
            "with `python -m deploy.make_secrets`"
        )
    if len(value) < MIN_SECRET_CHARS:
        raise SecretError(f"{what} is shorter than {MIN_SECRET_CHARS} characters")
    return value


def read_secret(path: Path, what: str) -> str:
    """The secret in `path` (surrounding whitespace removed), checked by `check_secret`."""
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretError(f"{what}: cannot read {path}: {exc.strerror}") from None
    return check_secret(value, f"{what} ({path})")
