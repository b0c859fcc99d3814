"""Operational endpoints: /healthz, /readyz, /metrics, /api/v1/openapi.json."""

from __future__ import annotations

import logging

from aiohttp import web

from ledger.errors import LedgerError
from projector.status import STALE_AFTER_S

from .fleet_handlers import observe_fleet
from .health import check_readiness
from .keys import FEED, FOLLOWER, LEDGER, METRICS, OPENAPI, REPO, SETTINGS
from .metrics import CONTENT_TYPE
from .views import dumps

__all__ = ["healthz", "readyz", "metrics", "openapi"]

log = logging.getLogger("api")


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers (dependencies are /readyz's business)."""
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    r = await check_readiness(app[SETTINGS], app[LEDGER], app[REPO], app[FEED], app[FOLLOWER])
    return web.Response(
        body=dumps(r.body()), status=200 if r.ready else 503, content_type="application/json",
        headers=None if r.ready else {"Retry-After": "1"},
    )


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    m, feed = app[METRICS], app[FEED]
    m.projected_seq.set(feed.seq)
    follower = app[FOLLOWER]
    m.stream_seq.set(follower.seq)
    m.cache_services.set(len(follower.entries()))
    m.feed_live.set(1 if feed.live else 0)
    r = await check_readiness(app[SETTINGS], app[LEDGER], app[REPO], feed, follower)
    if r.lag_events is not None:
        m.lag_events.set(r.lag_events)
    if r.lag_seconds is not None:
        m.lag_seconds.set(r.lag_seconds)
    m.projector_failed.set(1 if r.failed else 0)
    projector = r.checks.get("projector") or {}
    age = projector.get("heartbeat_age_seconds")
    if age is not None:
        m.projector_heartbeat_age.set(age)
    if projector.get("last_seq") is not None:
        m.projector_applied_seq.set(projector["last_seq"])
    m.projector_up.set(1 if projector.get("state") == "running" and age is not None and age <= STALE_AFTER_S else 0)
    try:
        await observe_fleet(app)  # instances per service and state (issue 16)
    except LedgerError as exc:  # NATS unreachable: the last values stay; readiness says why
        log.debug("fleet metrics: %s", exc.message)
    return web.Response(body=m.render(), headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")
