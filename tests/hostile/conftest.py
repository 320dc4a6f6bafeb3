"""Fixtures of the hostile-input tests (shared with the fault tests)."""

from tests.faults.conftest import procs, smtp

__all__ = ["procs", "smtp"]
