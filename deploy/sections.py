"""Generated sections inside hand-written files, between BEGIN/END GENERATED markers.

docker-compose.yml, deploy/mongo/create-users.js, deploy/prometheus/prometheus.yml and
deploy/caddy/Caddyfile are mostly written by hand (NATS, MongoDB, Grafana, the proxy's
site), with a few sections that derive from the service declarations. Each such section
sits between two comment lines,

    # BEGIN GENERATED <name> (python -m deploy.generate ...): do not edit
    # END GENERATED <name>

(`//` in JavaScript), and `python -m deploy.generate` rewrites only the lines between them,
so a reader sees at once which lines follow the declarations and which are the operator's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class SectionError(ValueError):
    """A file lacks a marker, or holds one twice: it names the file and the section."""


def _marker(kind: str, name: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(#|//)\s*{kind} GENERATED {re.escape(name)}(\s|$)")


def replace_section(text: str, name: str, body: Sequence[str], where: str) -> str:
    """`text` with the lines between section `name`'s markers replaced by `body` (lines
    without their line ends, indented as they should appear)."""
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if _marker("BEGIN", name).match(line)]
    ends = [i for i, line in enumerate(lines) if _marker("END", name).match(line)]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise SectionError(
            f"{where}: needs exactly one 'BEGIN GENERATED {name}' line followed by one "
            f"'END GENERATED {name}' line (found {len(begins)} and {len(ends)})"
        )
    start, end = begins[0], ends[0]
    return "".join([*lines[: start + 1], *(line + "\n" for line in body), *lines[end:]])
