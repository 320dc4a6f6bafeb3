"""`ibest purge-nhs-numbers`: find, then delete, patient references that are NHS numbers.

Before the contract refused an NHS number written with any separators ('943.476.5919',
'943_476_5919', '943:476:5919'), such references were accepted and stored. This one-off
command asks every service that keeps patient references (today outcomes, notifications and
reporting: each one's `cli.purge_nhs_numbers`, found through ibest/registry.py) to find
them and, with `--apply`, delete them; the tool never reaches into a service's collections.
A dry run (the default) only counts.

Reporting keeps references inside its aggregates (entity ids in each site's record), so it is
mended by a rebuild: the stored stream is replayed through the contract, which now refuses
those events, into a fresh generation that replaces the old ones.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from ibest import registry
from ibest.backbone.settings import Settings

ServicePurge = Callable[[Settings, bool], Awaitable[dict[str, int]]]
"""A service's `purge_nhs_numbers(settings, apply)` in its `cli.py`: counts by where."""


@dataclass
class Found:
    """Documents holding an NHS number as patient reference, per `service.where`."""

    documents: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.documents.values())


def service_purges() -> dict[str, ServicePurge]:
    """Each declared service that answers the purge (its commands module has
    `purge_nhs_numbers`), by name."""
    found: dict[str, ServicePurge] = {}
    for service in registry.SERVICES:
        if service.commands:
            module = importlib.import_module(f"{service.package}.cli")
            if hasattr(module, "purge_nhs_numbers"):
                found[service.name] = cast(ServicePurge, module.purge_nhs_numbers)
    return found


async def purge(settings: Settings, apply: bool) -> Found:
    """Ask every service to count (and with `apply`, delete) each stored reference that is
    an NHS number; each answers through its own stores (ibest/backbone/patient_refs.py)."""
    found = Found()
    for name, service_purge in service_purges().items():
        for where, n in (await service_purge(settings, apply)).items():
            found.documents[f"{name}.{where}"] = n
    return found


async def purge_command(args: argparse.Namespace, settings: Settings) -> int:
    found = await purge(settings, args.apply)
    for where, n in found.documents.items():
        if n:
            print(f"{where}: {n} document(s) with an NHS number as patient reference")
    if not found.total:
        print("no stored patient reference is an NHS number")
    elif args.apply:
        print(
            f"purged {found.total} document(s); reporting rebuilt from the stream "
            "(the contract refuses those events now)"
        )
    else:
        print(f"dry run: {found.total} document(s) would be purged; run again with --apply")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "purge-nhs-numbers",
        help="find stored patient references that are NHS numbers (any separators) in "
        "outcomes, notifications and reporting; --apply deletes them (one-off)",
    )
    p.add_argument(
        "--apply", action="store_true", help="delete them (default: a dry run that only counts)"
    )
    p.set_defaults(func=purge_command)
