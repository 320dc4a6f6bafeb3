"""Prometheus metrics every service exports on /metrics (names prefixed `ibest_`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "ibest_events_consumed_total",
    "Events a service's consumer finished with, by outcome (applied, dead_lettered).",
    ["service", "type", "outcome"],
)
EVENTS_RETRIED = Counter(
    "ibest_events_retried_total", "Deliveries put back for a transient failure.", ["service"]
)
HANDLER_ERRORS = Counter(
    "ibest_handler_errors_total", "Handler failures of any kind.", ["service", "kind"]
)
DEAD_LETTERS = Counter(
    "ibest_dead_letters_total", "Events sent to the dead-letter stream.", ["service", "reason"]
)
EVENTS_PUBLISHED = Counter(
    "ibest_events_published_total", "Events a service published.", ["service", "type"]
)
HANDLER_SECONDS = Histogram(
    "ibest_handler_duration_seconds",
    "Time to apply one event.",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENT_AGE_SECONDS = Histogram(
    "ibest_event_processing_latency_seconds",
    "From the event's arrival in the stream to its effect being stored.",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
LAST_EVENT_TIMESTAMP = Gauge(
    "ibest_last_event_applied_timestamp_seconds",
    "Unix time at which this service last applied an event.",
    ["service"],
)
OUTBOX_BACKLOG = Gauge(
    "ibest_outbox_backlog",
    "Derived events a service's outbox relay found still unpublished on its last pass.",
    ["service"],
)
TRUST_SHARE_USED = Gauge(
    "ibest_trust_share_used_ratio",
    "Events stored on one trust's subject (trust, event type) over the stream's per-subject "
    "limit; at 1 the stream refuses that trust's next event of the type.",
    ["trust", "event"],
)
