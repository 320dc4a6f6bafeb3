"""`ibest simulate`: publish a realistic, seeded rollout (see deploy/README.md)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from ibest.backbone.settings import Settings
from ibest.simulate.model import SimulationOptions
from ibest.simulate.runner import run_simulation


def _start(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = SimulationOptions()
    p = sub.add_parser(
        "simulate", help="publish a simulated rollout as trust systems would", description=__doc__
    )
    p.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="same seed and options give the same events (default %(default)s)",
    )
    p.add_argument(
        "--trusts",
        type=int,
        default=None,
        help="how many trusts of deploy/trusts.yaml take part (default all)",
    )
    p.add_argument("--clinicians", type=int, default=defaults.clinicians)
    p.add_argument("--patients", type=int, default=defaults.patients)
    p.add_argument(
        "--start",
        type=_start,
        default=defaults.start,
        help="simulated start of the rollout, ISO date (default %(default)s)",
    )
    p.add_argument(
        "--months",
        type=int,
        default=defaults.months,
        help="length of the simulated rollout (default %(default)s)",
    )
    p.add_argument(
        "--time-compression",
        type=float,
        default=0.0,
        help="simulated seconds per real second, e.g. 604800 for a week a second; "
        "0 publishes everything at once (default)",
    )
    p.add_argument("--nats-url", default=None, help="default: NATS_URL from the settings")
    p.add_argument(
        "--via",
        choices=["nats", "http"],
        default="nats",
        help="publish on NATS (default) or send through the HTTPS gateway, with a "
        "key per trust minted for the run and revoked after",
    )
    p.add_argument(
        "--gateway-url",
        default=None,
        help="with --via http (default: http://IBEST_HTTP_HOST:IBEST_GATEWAY_PORT)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=simulate_command)


async def simulate_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.nats_url:
        settings = settings.model_copy(update={"nats_url": args.nats_url})
    options = SimulationOptions(
        seed=args.seed,
        trusts=args.trusts,
        clinicians=args.clinicians,
        patients=args.patients,
        start=args.start,
        months=args.months,
        time_compression=args.time_compression,
        via=args.via,
        gateway_url=args.gateway_url,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    summary = await run_simulation(settings, options)
    print("\n".join(summary.lines()))
    return 0
