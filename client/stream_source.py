"""The stream as a config source: one service's events, straight from JetStream.

``StreamWatcher`` (``ledger.watch``, re-exported here) is one ordered consumer on ``config.events.<service>``: ``LAST_PER_SUBJECT``
first (the current config, no fold, no HTTP), then live. (The audit reader uses it too, from
sequence 1 over every service's subject.) Heartbeats every second let nats-py
notice a dead consumer; on top of that the watcher re-subscribes itself from the last stream
sequence it delivered (``BY_START_SEQUENCE`` ``last_seq + 1``) as soon as the connection is
back, or when asked to (``resync``, after a version gap). It reads through JetStream, never a
core subscription: those also see publishes the stream rejected (NATS_NOTES.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from nats.aio.client import Client as NATS

from ledger import Entry, LedgerSettings
from ledger.nats_io import direct_last
from ledger.watch import StreamWatcher

from .snapshot import Snapshot, Source

__all__ = ["StreamWatcher", "read_current", "nats_reachable"]

log = logging.getLogger("client.stream")



async def nats_reachable(url: str, timeout: float) -> bool:
    """Whether any server of ``url`` accepts a TCP connection.

    Asked before ``nats_io.connect``: nats-py retries a first connect to a dead server until the
    deadline cancels it, and that cancellation can be swallowed inside nats-py's reconnect loop
    (its ``_close()``), leaving a connect that never ends. A dead server is found here instead.
    """
    for server in url.split(","):
        server = server.strip()
        parts = urlsplit(server if "://" in server else f"nats://{server}")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222), timeout
            )
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


async def read_current(nc: NATS, settings: LedgerSettings, service: str) -> Snapshot:
    """The service's current config with one direct get (``Snapshot(None, None)`` if none)."""
    msg = await direct_last(nc, settings.stream, settings.subject(service), timeout=settings.request_timeout)
    if msg is None:
        return Snapshot(None, None, Source.STREAM)
    return Snapshot.from_entry(Entry.from_stored(msg))
