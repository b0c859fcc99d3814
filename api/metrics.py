"""Prometheus metrics with a registry per application (no global registry).

Label values are bounded: ``route`` is the route's template (``/api/v1/config/{service}``), never
the raw path; unmatched paths are counted as ``unmatched``.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

__all__ = ["Metrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric the API exports, registered in its own ``CollectorRegistry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "config_api_requests", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=r,
        )
        self.latency = Histogram(
            "config_api_request_duration_seconds", "HTTP request latency by route and method",
            ["route", "method"], buckets=_BUCKETS, registry=r,
        )
        self.appends = Counter(
            "config_api_appends", "Changes appended to the ledger, by kind and outcome "
            "(appended, duplicate = idempotent retry)", ["kind", "outcome"], registry=r,
        )
        self.conflicts = Counter(
            "config_api_conflicts", "Writes refused with 409 (If-Match did not hold)", registry=r
        )
        self.stream_fallbacks = Counter(
            "config_api_stream_fallback_reads",
            "Current reads served by a direct get because the API's stream follower was behind "
            "what the reader must see", registry=r,
        )
        self.stream_seq = Gauge(
            "config_api_stream_seq", "Stream sequence the API's own stream follower has applied", registry=r
        )
        self.projected_seq = Gauge(
            "config_api_projected_seq", "Projector checkpoint (PostgreSQL) as the API last heard it", registry=r
        )
        self.lag_events = Gauge(
            "config_api_projection_lag_events", "Stream events not yet projected", registry=r
        )
        self.lag_seconds = Gauge(
            "config_api_projection_lag_seconds", "Age of the oldest unprojected event", registry=r
        )
        self.projector_failed = Gauge(
            "config_api_projector_failed", "1 when the projector has fail-stopped", registry=r
        )
        self.cache_services = Gauge(
            "config_api_cache_services", "Services whose current config the stream follower holds", registry=r
        )
        self.feed_live = Gauge(
            "config_api_projection_feed_live", "1 while the LISTEN/NOTIFY feed is connected", registry=r
        )
        self.sse_watchers = Gauge("config_api_sse_watchers", "Open SSE watch streams", registry=r)
        self.append_latency = Histogram(
            "config_api_append_duration_seconds",
            "Time to append a change to the ledger (JetStream acknowledged)", buckets=_BUCKETS, registry=r,
        )
        self.projection_latency = Histogram(
            "config_api_projection_wait_seconds",
            "Time from a write's acknowledgement until the projection shows it (projection lag seen "
            "by writers)", buckets=_BUCKETS, registry=r,
        )
        # The projector's own state, as this API reads it from projector_status on each scrape.
        self.projector_heartbeat_age = Gauge(
            "config_projector_heartbeat_age_seconds", "Age of the projector's last heartbeat", registry=r
        )
        self.projector_applied_seq = Gauge(
            "config_projector_last_applied_seq", "Last stream sequence the projector applied", registry=r
        )
        self.projector_up = Gauge(
            "config_projector_up", "1 when the projector runs with a fresh heartbeat", registry=r
        )
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        PlatformCollector(registry=r)
        self.fleet_instances = Gauge(
            "config_api_fleet_instances", "Live instances by service and state (applied, rejected, "
            "behind the target or the rollout candidate they should run), as of the scrape",
            ["service", "state"], registry=r,
        )
        # labels() is a dict lookup behind a lock; keep the children we use per request.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[key] = child
        child[0].inc()
        child[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
