"""The one type of a stored MongoDB document (or filter, or update) as adapters see it."""

from __future__ import annotations

from typing import Any

Document = dict[str, Any]
