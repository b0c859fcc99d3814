"""``Sources``: which source a ``ConfigClient`` asks, and the background feeds that push changes.

Best first: the stream (when a NATS URL is configured), the HTTP API, the last-known-good file
(once, and only while the holder has nothing better than the safe defaults). Every snapshot is
offered to the ``ConfigHolder``, which decides whether to take it.

- **start** (``init_async``): the stream gets ``stream_startup_timeout`` to answer, then the hub.
- **refresh** (``get_config`` when stale): one direct read of the stream, else the hub.
- **hot reload**: the stream's ordered consumer (``StreamWatcher`` + ``StreamFollower``), or the
  API's SSE watch when there is no NATS; each reconnects by itself with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from nats.aio.client import Client as NATS

from ledger import nats_io
from ledger.errors import LedgerError

from .holder import ConfigHolder
from .http_source import HttpSource
from .lkg import LastKnownGood
from .settings import ClientSettings
from .snapshot import Snapshot, Source
from .stream_follow import StreamFollower
from .stream_source import StreamWatcher, nats_reachable, read_current

Spawn = Callable[[Coroutine[Any, Any, None], str], None]

__all__ = ["RETRY_INTERVAL", "Sources"]

log = logging.getLogger("client")

RETRY_INTERVAL = 5.0  # seconds between attempts to reach a hub that failed (bounded by the TTL)


class Sources:
    """The stream connection, the HTTP source, the LKG file and the background tasks."""

    def __init__(
        self,
        service: str,
        settings: ClientSettings,
        holder: ConfigHolder,
        *,
        http: HttpSource,
        lkg: LastKnownGood | None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.holder = holder
        self.http = http
        self.lkg = lkg
        self.follower = StreamFollower(service)
        self.hot = False  # hot reload wanted
        self.nc: NATS | None = None
        self.on_connected: Callable[[NATS, Spawn], None] | None = None  # e.g. the fleet's reporting
        self.watcher: StreamWatcher | None = None
        self._connecting: asyncio.Future[NATS] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresh_lock = asyncio.Lock()
        self._lkg_tried = False
        self._stream_settled = asyncio.Event()  # the stream answered, or cannot answer for now
        self.stream_answered = False
        self.stream_live = False  # the watcher is caught up on a connected stream
        self.sse_live = False

    @property
    def live(self) -> bool:
        """A feed pushes every change: the held config is current without asking."""
        return self.stream_live or self.sse_live

    def needs_refresh(self) -> bool:
        return not self.live and self.holder.due()

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, hot: bool) -> None:
        """The first config: the stream (bounded wait), else the hub, else the LKG file."""
        self.hot = hot
        if self.settings.nats_url:
            self._spawn(self._run_stream(), "config-stream")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stream_settled.wait(), self.settings.stream_startup_timeout)
            if not self.stream_answered:
                log.warning(
                    "the stream at %s did not answer within %.1f s; %s falls back to the config hub",
                    self.settings.nats_url, self.settings.stream_startup_timeout, self.service,
                )
        elif self.hot:
            self._spawn(self._run_sse(), "config-sse")
        if not self.stream_answered:
            await self.refresh_from_hub()

    def subscribe(self) -> None:
        """Start hot reload now (idempotent)."""
        if self.hot:
            return
        self.hot = True
        if not self.settings.nats_url:
            self._spawn(self._run_sse(), "config-sse")
        elif self.nc is not None:
            self._spawn(self._watch(self.nc), "config-watch")
        # else: the connecting stream task starts watching once connected

    async def close(self) -> None:
        """Cancel the feeds, then close the NATS connection (waiting out a connect in progress)."""
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        connecting, self._connecting = self._connecting, None
        if connecting is not None and self.nc is None:
            await asyncio.wait({connecting}, timeout=self.settings.ledger.connect_timeout + 2)
            if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
                self.nc = connecting.result()
            elif not connecting.done():
                log.warning("abandoning a NATS connect in progress to %s", self.settings.nats_url)
        nc, self.nc = self.nc, None
        if nc is not None:
            with contextlib.suppress(Exception):  # closing must not raise (the server may be gone)
                await asyncio.wait_for(nc.close(), 5)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}:{self.service}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    # --- pull: refresh on demand -----------------------------------------------------------------

    async def refresh(self, *, force: bool) -> None:
        async with self._refresh_lock:
            if not force and not self.needs_refresh():
                return  # another caller refreshed while this one waited
            if not await self._refresh_from_stream():
                await self.refresh_from_hub()

    async def _refresh_from_stream(self) -> bool:
        nc = self.nc
        if nc is None or not nc.is_connected:
            return False
        try:
            snap = await read_current(nc, self.settings.ledger, self.service)
        except LedgerError as exc:
            log.warning("cannot read %s from the stream: %s", self.service, exc.message)
            return False
        self.holder.offer(snap)
        return True

    async def refresh_from_hub(self) -> None:
        """The HTTP API; when it fails, the LKG file (once) and the safe defaults."""
        try:
            snap = await self.http.fetch(self.holder.state.version)
        except LedgerError as exc:
            self.holder.failed(RETRY_INTERVAL)
            log.warning(
                "config hub unavailable for %s (%s); keeping %s",
                self.service, exc.message, self.holder.state.source.value,
            )
            self._load_lkg()
            return
        if snap is None:  # 304: what we hold is current
            self.holder.confirm(Source.API)
            return
        self.holder.offer(snap)

    def _load_lkg(self) -> None:
        if self._lkg_tried or self.lkg is None or self.holder.state.source is not Source.DEFAULTS:
            return
        self._lkg_tried = True
        snap = self.lkg.load()
        if snap is not None:
            self.holder.offer(snap)

    # --- push: hot reload ------------------------------------------------------------------------

    async def _run_stream(self) -> None:
        """Connect (retrying in the background), then watch or read once."""
        url = self.settings.nats_url
        assert url is not None
        timeout = self.settings.ledger.connect_timeout
        delay, warned = 0.1, False
        while self.nc is None:
            if await nats_reachable(url, timeout):
                # Shielded: cancelling a connect in progress can hang nats-py (see
                # nats_reachable); close() waits for it instead.
                self._connecting = asyncio.ensure_future(
                    nats_io.connect(
                        url,
                        name=f"config-client:{self.service}",
                        connect_timeout=timeout,
                        on_disconnect=self._nats_down,
                        on_reconnect=self._nats_back,
                    )
                )
                try:
                    self.nc = await asyncio.shield(self._connecting)
                    break
                except LedgerError as exc:
                    problem = exc.message
            else:
                problem = f"cannot reach NATS at {url}"
            (log.debug if warned else log.warning)("%s; retrying in the background", problem)
            warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        if self.on_connected is not None:
            self.on_connected(self.nc, self._spawn)
        if self.hot:
            await self._watch(self.nc)
        else:
            self.stream_answered = await self._refresh_from_stream()
            self._stream_settled.set()

    def _nats_down(self) -> None:
        self.stream_live = False

    def _nats_back(self) -> None:
        if self.watcher is not None:
            self.watcher.reconnected()

    async def _watch(self, nc: NATS) -> None:
        watcher = StreamWatcher(nc, self.settings.ledger, self.settings.ledger.subject(self.service))
        self.watcher = watcher
        first = True
        try:
            async for item in watcher:
                if item is not None:
                    snap = self.follower.take(item, watcher.resync)
                    if snap is not None:
                        self.holder.offer(snap)
                    continue
                if first and self.follower.empty:
                    self.holder.offer(Snapshot(None, None, Source.STREAM))  # an empty subject: no config
                first = False
                self.holder.touch()
                self.stream_live = nc.is_connected
                self.stream_answered = True
                self._stream_settled.set()
        finally:
            self.stream_live = False
            self.watcher = None

    async def _run_sse(self) -> None:
        """Hot reload without NATS: the API's SSE watch, reconnecting with backoff."""
        delay, warned = 0.2, False
        while True:
            try:
                async for snap in self.http.watch(after_version=self.holder.high_water):
                    if snap is None:  # connected: what follows is everything after our version
                        self.sse_live = True
                        delay, warned = 0.2, False
                    else:
                        self.holder.offer(snap)
            except LedgerError as exc:
                (log.debug if warned else log.warning)(
                    "SSE watch of %s ended: %s; reconnecting", self.service, exc.message
                )
                warned = True
            finally:
                self.sse_live = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
