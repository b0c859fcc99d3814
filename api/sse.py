"""``GET /api/v1/config/{service}/watch``: Server-Sent Events of one service's versions.

Source: the stream. The API's own follower (``api.follower``) wakes the watcher when the service
changes; the watcher then sends every version after the last one it sent, in order — from the
versions the follower keeps in memory, or, when the watcher is further behind than those, read
from the stream itself (``Ledger.at_version_entry`` then ``history_entries``). So there is never
a gap, whatever was coalesced, and PostgreSQL is not involved.

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
from typing import Any

from aiohttp import web

from ledger import Ledger
from ledger.errors import LedgerError

from .diff import diff
from .follower import StreamFollower
from .keys import FOLLOWER, LEDGER, METRICS, READER, SETTINGS
from .params import parse_last_event_id, service_param
from .repository import Version
from .views import change_event_view, dumps, version_from_entry

__all__ = ["watch", "format_event"]

log = logging.getLogger("api.sse")


def format_event(event: str, event_id: int, data: dict[str, Any]) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event.encode(), dumps(data))


async def _from_stream(ledger: Ledger, service: str, last: int) -> list[Version]:
    """Every version after ``last`` that the stream holds now, oldest first."""
    first = await ledger.at_version_entry(service, last + 1)
    if first is None:
        return []
    return [version_from_entry(e) async for e in ledger.history_entries(service, start_seq=first.seq)]


async def _versions_after(follower: StreamFollower, ledger: Ledger, service: str, last: int) -> list[Version]:
    kept = follower.versions_after(service, last)
    if kept is not None:
        return kept
    return await _from_stream(ledger, service, last)


async def _config_of(follower: StreamFollower, ledger: Ledger, service: str, version: int) -> Any:
    """The document at ``version`` (the base of the first diff after a resume)."""
    if version <= 0:
        return None
    kept = follower.version(service, version)
    if kept is not None:
        return kept.config
    entry = await ledger.at_version_entry(service, version)
    return entry.event.config if entry else None


async def watch(request: web.Request) -> web.StreamResponse:
    service = service_param(request.match_info["service"])
    app = request.app
    follower, ledger, metrics = app[FOLLOWER], app[LEDGER], app[METRICS]
    heartbeat = app[SETTINGS].sse_heartbeat_s
    resume = parse_last_event_id(request.headers.get("Last-Event-ID"), request.query.get("last_event_id"))
    wake = follower.subscribe(service)  # before reading anything: no change can slip between
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
            last_config = await _config_of(follower, ledger, service, resume)
            first += [("change", v) for v in await _versions_after(follower, ledger, service, last)]

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
            while not follower.closing:
                if not wake.is_set():
                    try:
                        async with asyncio.timeout(heartbeat):  # (wait_for can swallow a cancel)
                            await wake.wait()
                    except TimeoutError:
                        await response.write(b": keepalive\n\n")
                        continue
                wake.clear()
                if follower.closing:
                    break
                for v in await _versions_after(follower, ledger, service, last):
                    await send("change", v)
        except LedgerError as exc:
            # NATS went away mid-catch-up: end it; the client resumes with Last-Event-ID.
            log.info("ending watch of %s after version %d: %s", service, last, exc)
        except ConnectionResetError:
            return response  # the client left
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
    finally:
        follower.unsubscribe(service, wake)
        metrics.sse_watchers.dec()
