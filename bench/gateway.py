"""The HTTPS gateway's throughput and latency beside the raw JetStream publish ceiling.

    .venv/bin/python -m bench.gateway [--events 20000] [--clients 8] [--batch 100]
                                      [--rate 200] [--seconds 15]

In one run, on fresh servers: (1) the ceiling: raw nats-py JetStream publishing with
`publish_async`, 500 in flight, each acknowledged (the fastest nats-py offers, and the call
the gateway makes), and awaiting each `publish` (bench.ceiling's default) beside it; (2) batched
ingestion: `--clients` concurrent clients each posting batches of `--batch` events to
POST /v1/events until `--events` are accepted; (3) single events: one event per request,
started at a steady `--rate` per second (open loop: a slow answer does not delay the next
request), each request's latency from send to answer. The gateway runs as its own process
(`python -m services.gateway`) with the rate limit raised out of the way; the clients run
in this process. Targets (issue 16): (2) at least half of (1); (3) p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import nats
from nats.js import JetStreamContext

from bench.ceiling import publish_all, publish_async_all, sample_events
from bench.common import (
    cpu_now,
    cpu_since,
    fresh_streams,
    load,
    machine,
    percentile,
    platform_services,
    servers,
)
from ibest.backbone.settings import Settings
from services.gateway.bootstrap import key_admin

BATCH = "application/cloudevents-batch+json"
Publishing = Callable[[JetStreamContext, list[tuple[str, bytes, str]], int], Awaitable[float]]
STRUCTURED = "application/cloudevents+json"


def event(i: int) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/trusts/RTH/bench",
        "type": "uk.nhs.ibest.module.started.v1",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "trustcode": "RTH",
        "sitecode": "RTH08",
        "data": {"clinician_ref": f"c{i % 5000}", "module_id": "m01-understanding-back-pain"},
    }


async def ceiling(nats_url: str, n: int, publish: Publishing = publish_async_all) -> float:
    """Raw nats-py publishing on a fresh events stream, in events per second."""
    await fresh_streams(nats_url)
    nc = await nats.connect(nats_url)
    try:
        return n / await publish(nc.jetstream(), sample_events(n), 500)
    finally:
        await nc.drain()


async def batched(url: str, auth: str, n: int, clients: int, batch: int) -> float:
    """Events accepted per second; each client posts batches over its own keep-alive
    connection (the minimal client below: httpx cost the clients about as much CPU as the
    gateway spent, on a machine the two share)."""
    bodies = [json.dumps([event(i + j) for j in range(batch)]).encode() for i in range(0, n, batch)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    accepted = 0

    async def client() -> None:
        nonlocal accepted
        conn = await Connection.open(url, auth, BATCH)
        try:
            while not queue.empty():
                status, answer = await conn.post(queue.get_nowait())
                assert status == 200, answer
                accepted += sum(r["status"] == "accepted" for r in json.loads(answer)["results"])
        finally:
            conn.writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    assert accepted == len(bodies) * batch
    return accepted / elapsed


async def server_seconds(url: str) -> tuple[float, float]:
    """(sum, count) of the gateway's own request-duration histogram: its side of latency."""
    async with httpx.AsyncClient(base_url=url) as http:
        text = (await http.get("/metrics")).text
    found = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f'ibest_gateway_request_duration_seconds_{part}{{trust="RTH"}}'):
                found[part] = float(line.rsplit(" ", 1)[1])
    return found.get("sum", 0.0), found.get("count", 0.0)


class Connection:
    """A minimal HTTP/1.1 keep-alive client, so the measurements time the gateway: httpx
    spends milliseconds of client CPU per request on this machine."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes
    ) -> None:
        self.reader, self.writer, self.head = reader, writer, head

    @classmethod
    async def open(cls, url: str, auth: str, content_type: str = STRUCTURED) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
            f"Content-Type: {content_type}\r\n"
        ).encode()
        return cls(reader, writer, head)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        return int(lines[0].split(" ")[1]), await self.reader.readexactly(length)


async def singles(
    url: str, auth: str, rate: float, seconds: float, connections: int = 32
) -> tuple[list[float], float]:
    """Open loop: request i is due at start + i/rate; its latency runs from when it was due
    to its answer, so time spent waiting for a free connection counts (no coordinated
    omission)."""
    n = int(rate * seconds)
    bodies = [json.dumps(event(i)).encode() for i in range(n)]
    latencies: list[float] = []
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(url, auth))

    async def one(due: float, body: bytes) -> None:
        conn = await pool.get()
        try:
            status, answer = await conn.post(body)
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        assert status == 200, answer

    start = time.perf_counter()
    tasks = []
    for i, body in enumerate(bodies):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, body)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    return latencies, n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with servers() as (nats_url, mongo_url):
        raw = asyncio.run(ceiling(nats_url, args.events))
        awaited = asyncio.run(ceiling(nats_url, args.events, publish_all))
        asyncio.run(fresh_streams(nats_url))
        # The key cache as an operator tuning for throughput would set it (the default, 0,
        # reads the key on every request so that a revocation is immediate).
        env = {
            "IBEST_GATEWAY_RATE": "1000000",
            "IBEST_GATEWAY_BURST": "1000000",
            "IBEST_GATEWAY_KEY_CACHE_SECONDS": "5",
        }
        with platform_services(nats_url, mongo_url, ("gateway",), env) as urls:
            cpu: dict[str, dict[str, float]] = {}

            async def run() -> tuple[float, list[float], float, float]:
                async with key_admin(Settings()) as admin:
                    _, token = await admin.create("RTH")
                auth = f"Bearer {token}"
                mark = cpu_now()
                per_second = await batched(
                    urls["gateway"], auth, args.events, args.clients, args.batch
                )
                cpu["batched"] = cpu_since(mark)
                mark = cpu_now()
                before = await server_seconds(urls["gateway"])
                latencies, achieved = await singles(urls["gateway"], auth, args.rate, args.seconds)
                after = await server_seconds(urls["gateway"])
                cpu["single"] = cpu_since(mark)
                inside = (after[0] - before[0]) / max(1.0, after[1] - before[1])
                return per_second, latencies, achieved, inside

            per_second, latencies, achieved, inside = asyncio.run(run())
    print(f"machine: {machine()}; {load()}")
    print(
        f"ceiling, raw nats-py JetStream publish: {raw:,.0f} events/s ({args.events:,} "
        "events, publish_async, 500 in flight, each acknowledged: the gateway's call)"
    )
    print(
        f"  for comparison, each publish awaited (js.publish, 500 in flight): {awaited:,.0f} "
        f"events/s (the gateway batched below is {per_second / awaited:.0%} of it)"
    )
    print(
        f"gateway, batched: {per_second:,.0f} events/s accepted ({args.events:,} events in "
        f"batches of {args.batch} from {args.clients} clients) = "
        f"{per_second / raw:.0%} of the ceiling; CPU: " + _cpu(cpu["batched"])
    )
    print(
        f"  gateway CPU per 1,000 events: {cpu['batched']['gateway'] / args.events * 1000:.2f} s"
        " (so one dedicated core would accept about "
        f"{args.events / cpu['batched']['gateway']:,.0f} events/s)"
    )
    print(
        f"gateway, single events at {args.rate:.0f} req/s for {args.seconds:.0f}s: "
        f"{achieved:,.0f} req/s achieved, p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms; mean time inside the gateway "
        f"{inside * 1000:.1f} ms; CPU: " + _cpu(cpu["single"])
    )
    n = int(args.rate * args.seconds)
    print(
        f"  gateway CPU per request: {cpu['single']['gateway'] / n * 1000:.1f} ms (so one "
        f"dedicated core would answer about {n / cpu['single']['gateway']:,.0f} req/s)"
    )


def _cpu(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.1f} s" for name, value in sorted(seconds.items()))


if __name__ == "__main__":
    main()
