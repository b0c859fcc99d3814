"""``GET /api/v1/config/{service}/watch``: Server-Sent Events of one service's versions.

Source: the projection. ``ProjectionFeed`` wakes the watcher when the service changes (NOTIFY);
the watcher then sends every version after the last one it sent, in order, reading
``config_versions`` when more than the newest one is missing — so there is never a gap, whatever
was coalesced or missed while the feed reconnected.

- A new watcher gets the current state first (``event: config``), then one ``event: change`` per
  version. ``id:`` is the version.
- ``Last-Event-ID: N`` (or ``?last_event_id=N``) resumes: every version after N, then live.
- ``: keepalive`` comments every ``API_SSE_HEARTBEAT_S`` seconds.
- Each event's ``data`` carries the full document and its key-level ``diff`` from the previous one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ledger.errors import LedgerError

from .diff import diff
from .keys import FEED, METRICS, READER, REPO, SETTINGS
from .params import MAX_VERSION, parse_last_event_id, service_param
from .projection_wait import ProjectionFeed
from .repository import Repository, Version
from .views import change_event_view, dumps

__all__ = ["watch", "format_event"]

log = logging.getLogger("api.sse")

_BATCH = 500


def format_event(event: str, event_id: int, data: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event.encode(), dumps(data))


async def _versions_after(repo: Repository, service: str, last: int) -> AsyncIterator[Version]:
    """Every version after ``last``, oldest first, in batches."""
    while last < MAX_VERSION:  # nothing follows the last version the column holds
        rows = await repo.versions_from(service, last + 1, limit=_BATCH)
        for row in rows:
            yield row
            last = row.version
        if len(rows) < _BATCH:
            return


async def _new_versions(feed: ProjectionFeed, repo: Repository, service: str, last: int) -> list[Version]:
    cached = feed.cache.get(service) if feed.live else None
    if cached is not None and cached.version.version <= last:
        return []
    if cached is not None and cached.version.version == last + 1:
        return [cached.version]  # the common case: no query
    return [v async for v in _versions_after(repo, service, last)]


async def watch(request: web.Request) -> web.StreamResponse:
    service = service_param(request.match_info["service"])
    app = request.app
    feed, repo, metrics = app[FEED], app[REPO], app[METRICS]
    heartbeat = app[SETTINGS].sse_heartbeat_s
    resume = parse_last_event_id(request.headers.get("Last-Event-ID"), request.query.get("last_event_id"))
    wake = feed.subscribe(service)  # before reading anything: no change can slip between
    metrics.sse_watchers.inc()
    try:
        # Everything that can fail with a JSON error happens before the stream starts.
        first: list[tuple[str, Version]] = []
        last, last_config = 0, None
        if resume is None:
            read = await app[READER].current(service)
            if read.entry is not None:
                first.append(("config", read.entry.version))
        else:
            last = resume
            if resume > 0:
                base = await repo.version(service, resume)
                last_config = base.config if base else None
            first += [("change", v) async for v in _versions_after(repo, service, last)]

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")

        async def send(kind: str, v: Version) -> None:
            nonlocal last, last_config
            changes = diff(last_config, v.config) if kind == "change" else None
            await response.write(format_event(kind, v.version, change_event_view(v, changes)))
            last, last_config = v.version, v.config

        try:
            for kind, v in first:
                await send(kind, v)
            while not feed.closing:
                try:
                    await asyncio.wait_for(wake.wait(), heartbeat)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                wake.clear()
                if feed.closing:
                    break
                for v in await _new_versions(feed, repo, service, last):
                    await send("change", v)
        except LedgerError as exc:
            # PostgreSQL went away mid-stream: end it; the client resumes with Last-Event-ID.
            log.info("ending watch of %s after version %d: %s", service, last, exc)
        except ConnectionResetError:
            return response  # the client left
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
    finally:
        feed.unsubscribe(service, wake)
        metrics.sse_watchers.dec()
