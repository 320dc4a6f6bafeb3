"""A 3-node NATS cluster on loopback with the streams at 3 replicas: stop one node during a
run (the events stream's leader, the hardest one to lose); nothing is lost."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from ibest.backbone.streams import EVENTS_STREAM, ensure_streams
from ibest.local.processes import Managed, find_binary, free_port, port_open, wait_until
from ibest.registry import consumers
from tests.faults.stack import (
    Processes,
    await_figures,
    connect,
    national,
    publish_all,
    reporting_script,
    stream_count,
    training_script,
)
from tests.harness import dead_letters, fresh_settings, wait_for

pytestmark = pytest.mark.slow  # end-to-end: `pytest -m "not slow"` skips it


def cluster_node(name: str, port: int, routes: list[int], own_route: int, home: Path) -> Managed:
    config = home / f"{name}.conf"
    config.write_text(f"""
server_name: {name}
listen: 127.0.0.1:{port}
jetstream {{ store_dir: "{home / name}" }}
cluster {{
  name: ibest-test
  listen: 127.0.0.1:{own_route}
  routes: [{", ".join(f"nats-route://127.0.0.1:{r}" for r in routes)}]
}}
""")
    return Managed(name, [find_binary("nats-server"), "-c", str(config)], home / f"{name}.log")


async def test_stopping_one_node_of_three_loses_nothing(
    mongodb_url: str, procs: Processes, tmp_path: Path
) -> None:
    ports = [free_port() for _ in range(3)]
    routes = [free_port() for _ in range(3)]
    nodes = {
        f"n{i + 1}": cluster_node(
            f"n{i + 1}", ports[i], [r for r in routes if r != own], own, tmp_path
        )
        for i, own in enumerate(routes)
    }
    for node in nodes.values():
        procs.others.append(node.start())
    for node, port in zip(nodes.values(), ports, strict=True):
        wait_until(partial(port_open, "127.0.0.1", port), 30, node.name, node.proc)
    urls = [f"nats://127.0.0.1:{p}" for p in ports]
    # The services get the whole seed list, as an operator would configure a cluster.
    settings = fresh_settings(",".join(urls), mongodb_url).model_copy(update={"stream_replicas": 3})
    nc = await connect(urls)
    try:
        js = nc.jetstream()

        async def streams_declared() -> bool:
            try:
                await ensure_streams(js, settings, consumers())
            except Exception:
                return False
            return True

        await wait_for(streams_declared, 60, "the cluster to elect leaders and take R3 streams")
        info = await js.stream_info(EVENTS_STREAM)
        assert info.config.num_replicas == 3
        training = training_script(clinicians=40)
        facts = reporting_script(clinicians=40, patients=30)
        expected = dict(facts.expected)
        for name in ("clinicians_enrolled", "clinicians_started", "clinicians_completed"):
            expected[name] += training.expected[name]
        events = training.events + facts.events
        enrolment = procs.service("enrolment", settings, tmp_path).start()
        reporting = procs.service("reporting", settings, tmp_path).start()
        half = len(events) // 2
        await publish_all(js, events[:half])

        async def partly_counted() -> bool:
            value = ((await national(reporting.url)) or {}).get("clinicians_enrolled")
            return isinstance(value, int) and value > 0

        await wait_for(partly_counted, 60, "the run under way")
        leader = (await js.stream_info(EVENTS_STREAM)).cluster
        assert leader is not None and leader.leader in nodes
        nodes[leader.leader].stop()
        await publish_all(js, events[half:])  # retried until a new leader takes them
        await await_figures(
            reporting.url,
            expected,
            90,
            f"exact figures with node {leader.leader} down",
            enrolment,
            reporting,
        )
        assert await stream_count(js, "ibest.v1.>") >= len(events)
        assert await dead_letters(js) == []
    finally:
        await nc.close()
