"""`ibest pseudonymise`: the reference implementation of the identifiers recipe
(docs/identifiers.md), for a trust's integration team to check its own engine against.

    ibest pseudonymise patient --key-file trust.key RTH0012345 ...
    ibest pseudonymise clinician --key-file programme.key PH123456 ...

Values come from the arguments or, with none, one per line on standard input; each answer is
printed on its own line, in order (the value itself is never printed). Runs offline: the
key never leaves the machine, and nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ibest.backbone.settings import Settings
from shared.keyed import clinician_pseudonym, patient_reference


def read_key(path: Path) -> bytes:
    """The key file's bytes, without a trailing newline (editors add one)."""
    key = path.read_bytes().rstrip(b"\r\n")
    if len(key) < 32:
        raise ValueError(f"{path}: a key of at least 32 bytes is needed (see docs/identifiers.md)")
    return key


def pseudonymise(kind: str, key: bytes, value: str) -> str:
    if kind == "clinician":
        return clinician_pseudonym(key, value)
    return patient_reference(key, value)


async def pseudonymise_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        key = read_key(args.key_file)
    except (OSError, ValueError) as exc:
        print(f"ibest pseudonymise: {exc}", file=sys.stderr)
        return 2
    values = args.values or [line.rstrip("\r\n") for line in sys.stdin]
    status = 0
    for value in values:
        try:
            print(pseudonymise(args.kind, key, value))
        except ValueError as exc:
            print(f"ibest pseudonymise: {exc}", file=sys.stderr)
            status = 1
    return status


def register(sub: Any) -> None:
    kinds = sub.add_parser(
        "pseudonymise",
        help="make patient or clinician references as the identifiers recipe says (offline)",
    ).add_subparsers(dest="kind", required=True)
    for kind, key_help, value_help in (
        ("patient", "the trust's own patient key", "local patient ids"),
        ("clinician", "the programme's clinician key", "professional registration numbers"),
    ):
        p = kinds.add_parser(kind, help=f"{kind} references from {value_help}")
        p.add_argument("--key-file", type=Path, required=True, help=key_help)
        p.add_argument("values", nargs="*", help=f"{value_help} (or one per line on stdin)")
        p.set_defaults(func=pseudonymise_command)
