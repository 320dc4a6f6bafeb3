"""The gateway's Prometheus metrics, per trust (`trust=""`: no valid key)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram

from services.gateway.domain.results import EventResult

REQUESTS = PromCounter(
    "ibest_gateway_requests_total",
    'Requests to POST /v1/events and /validate, by trust and HTTP status; trust="" also '
    "counts a 500 from any route, a 429 by client address on any path no key covers, and "
    "every refused GET /v1/rejections (401, 429, 400).",
    ["trust", "status"],
)
EVENTS = PromCounter(
    "ibest_gateway_events_total",
    "Events sent to the gateway, by trust and result (accepted, duplicate, rejected).",
    ["trust", "result"],
)
LATENCY = Histogram(
    "ibest_gateway_request_duration_seconds",
    "Time to answer POST /v1/events, by trust.",
    ["trust"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class PrometheusGatewayMetrics:
    def observe(
        self, trust: str, status: int, results: Sequence[EventResult], seconds: float
    ) -> None:
        REQUESTS.labels(trust, str(status)).inc()
        for result, count in Counter(r.status.value for r in results).items():
            EVENTS.labels(trust, result).inc(count)
        LATENCY.labels(trust).observe(seconds)
