"""``ConfigClient``: a service's operational config, hot-reloaded, never lost to a hub outage.

Compatible with the reference document (CONFIG_ARCHITECTURE.md, "ConfigClient")::

    client = ConfigClient("billing", safe_defaults={"operational": {"batch_size": 100}},
                          enable_nats_updates=True)
    await client.init_async()
    config = await client.get_config()
    batch_size = client.get_value("operational.batch_size", default=100)
    client.on_config_update(lambda new: print("now", new))
    await client.shutdown()

Sources, best first:

1. **The stream** (when a NATS URL is configured: ``nats_url=`` or ``$NATS_URL``). With
   ``enable_nats_updates=True`` (or after ``subscribe_to_updates()``) one ordered consumer on the
   service's subject delivers the current config, then every change (hot reload); without it the
   stream is read with one direct get per cache period. No HTTP call either way.
2. **The HTTP API** (``central_hub_url``) with ``If-None-Match`` and the ``cache_ttl_seconds``
   cache, when NATS is not configured or not reachable. Hot reload then uses its SSE watch.
3. **The last-known-good file** (``lkg_path``; default ``$CONFIG_LEDGER_LKG_DIR/<service>.json``,
   else the user's cache directory), written after every change from 1 or 2.
4. **``safe_defaults``**, only when no source has a config (nothing is merged).

Versions only move forward: duplicates and older versions are ignored. A deletion falls back to
the safe defaults and notifies. ``get_config()`` does not raise because the hub is down while
any source has a config; with none at all it raises ``NotFound`` ("Config not found for
service: X", a ``ValueError`` as in the reference troubleshooting section).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import time
from collections.abc import Coroutine, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client as NATS
from pydantic import BaseModel, ValidationError

from ledger import Entry, LedgerSettings, nats_io, validate_service_name
from ledger.errors import InvalidConfig, LedgerError, NotFound, UsageError
from ledger.nats_io import StoredMsg
from ledger.settings import settings_error

from .binding import Bound
from .fleet import FleetMember
from .http_source import HttpSource
from .lkg import LastKnownGood, LkgWriter
from .notify import Callback, Notifier
from .settings import ClientSettings
from .snapshot import Snapshot, Source
from .stream_source import StreamWatcher, nats_reachable, read_current

__all__ = ["ConfigClient"]

log = logging.getLogger("client")

M = TypeVar("M", bound=BaseModel)

RETRY_INTERVAL = 5.0  # seconds between attempts to reach a hub that failed (bounded by the TTL)


class ConfigClient:
    """One service's config from the ledger (see the module docstring)."""

    def __init__(
        self,
        service_name: str,
        central_hub_url: str | None = None,
        cache_ttl_seconds: float = 300,
        enable_nats_updates: bool = False,
        safe_defaults: dict[str, Any] | None = None,
        *,
        nats_url: str | None = None,
        lkg_path: str | os.PathLike[str] | bool | None = None,
        token: str | None = None,
        environ: Mapping[str, str] | None = None,
        ledger_settings: LedgerSettings | None = None,
        http_timeout: float | None = None,
        stream_startup_timeout: float | None = None,
        instance_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        heartbeat_s: float = 10.0,
    ) -> None:
        """Defaults come from ``environ`` (``os.environ`` when None), read here, once.

        ``nats_url=""`` turns the stream off even when ``$NATS_URL`` is set; ``lkg_path=False``
        turns the last-known-good file off. ``ledger_settings`` names the stream and subject
        prefix (default ``CONFIG_LEDGER`` / ``config.events``, or ``$LEDGER_STREAM`` /
        ``$LEDGER_SUBJECT_PREFIX``). ``instance_id`` (default: host name and pid) and ``labels``
        name this instance in the fleet's convergence view and rollout stages; it acknowledges
        every apply and re-sends that every ``heartbeat_s`` seconds (``client.fleet``).
        """
        self.service_name = validate_service_name(service_name)
        if cache_ttl_seconds < 0:
            raise UsageError(f"cache_ttl_seconds must be >= 0, not {cache_ttl_seconds}")
        settings = ClientSettings.from_env(os.environ if environ is None else environ)
        overrides: dict[str, Any] = {}
        if central_hub_url is not None:
            overrides["central_hub_url"] = central_hub_url
        if nats_url is not None:
            overrides["nats_url"] = nats_url or None
        if token is not None:
            overrides["token"] = token
        if ledger_settings is not None:
            overrides["ledger"] = ledger_settings
        if http_timeout is not None:
            overrides["http_timeout"] = http_timeout
        if stream_startup_timeout is not None:
            overrides["stream_startup_timeout"] = stream_startup_timeout
        try:
            self.settings = ClientSettings.model_validate({**settings.model_dump(), **overrides})
        except ValidationError as exc:
            raise settings_error(exc, {}) from None
        self.cache_ttl_seconds = cache_ttl_seconds
        self.enable_nats_updates = enable_nats_updates
        self.safe_defaults = copy.deepcopy(safe_defaults) if safe_defaults is not None else None

        if lkg_path is False:
            self._lkg: LastKnownGood | None = None
        elif lkg_path is not None and lkg_path is not True:
            self._lkg = LastKnownGood(lkg_path, self.service_name)
        elif self.settings.lkg_dir is not None:
            self._lkg = LastKnownGood(self.settings.lkg_dir / f"{self.service_name}.json", self.service_name)
        else:
            self._lkg = None
        self._lkg_writer = LkgWriter(self._lkg) if self._lkg else None
        self._http = HttpSource(
            self.settings.central_hub_url,
            self.service_name,
            token=self.settings.token,
            timeout=self.settings.http_timeout,
        )

        self._state = self._defaults(None, None, None)
        self._high_water: int | None = None  # highest version accepted (deletions included)
        self._fresh_until = 0.0  # monotonic time the cached config stops being fresh
        self._retry_at = 0.0  # no new attempt at a failed hub before this monotonic time
        self._lkg_tried = False
        self._callbacks: list[Callback] = []
        self._bindings: list[Bound[Any]] = []
        self._notifier = Notifier()
        self._fleet = FleetMember(self, self.service_name, instance_id, labels, heartbeat_s)
        self._refresh_lock = asyncio.Lock()
        self._init_lock = asyncio.Lock()

        self._started = False
        self._closed = False
        self._hot = False  # hot reload wanted
        self._tasks: set[asyncio.Task[None]] = set()
        self._nc: NATS | None = None
        self._connecting: asyncio.Future[NATS] | None = None
        self._watcher: StreamWatcher | None = None
        self._stream_settled = asyncio.Event()  # the stream answered, or cannot answer for now
        self._stream_answered = False
        self._stream_live = False  # the watcher is caught up on a connected stream
        self._sse_live = False
        # What the stream delivered last (accepted or not), for gap detection.
        self._seen_version: int | None = None
        self._seen_seq: int | None = None
        self._gap_resync_from: int | None = None

    def __repr__(self) -> str:
        return (
            f"ConfigClient({self.service_name!r}, source={self.source.value}, version={self.version})"
        )

    # --- what the client holds -----------------------------------------------------------------

    @property
    def source(self) -> Source:
        """Where the current config came from: ``stream``, ``api``, ``lkg`` or ``defaults``."""
        return self._state.source

    @property
    def version(self) -> int | None:
        """The ledger version of the current config (of the deletion, after one); None if unknown."""
        return self._state.version

    @property
    def instance_id(self) -> str:
        """This instance's id in the fleet (acknowledgements, rollout stages)."""
        return self._fleet.instance_id

    @property
    def updated_at(self) -> datetime | None:
        return self._state.updated_at

    @property
    def central_hub_url(self) -> str:
        return self.settings.central_hub_url

    @property
    def nats_url(self) -> str | None:
        return self.settings.nats_url

    @property
    def lkg_path(self) -> Path | None:
        return self._lkg.path if self._lkg else None

    def get_value(self, path: str, default: Any = None) -> Any:
        """The value at dotted ``path`` ("operational.batch_size") of the current config, or ``default``.

        Synchronous: it reads what the client holds (kept fresh by ``init_async`` and hot reload).
        """
        node: Any = self._state.config
        if node is None:
            return default
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return default
        return copy.deepcopy(node) if isinstance(node, dict | list) else node

    async def get_config(self, force_refresh: bool = False) -> dict[str, Any]:
        """The current config (a copy): from the live stream, the cache, or a refresh.

        ``force_refresh`` asks the best reachable source now, whatever the cache says.
        Raises NotFound only when no source has a config and there are no safe defaults.
        After ``shutdown()`` it returns what the client last held, without asking anyone.
        """
        if not self._closed:  # after shutdown(): what the client last held, without I/O
            await self.init_async()
            if force_refresh or self._needs_refresh():
                await self._refresh(force=force_refresh)
        config = self._state.config
        if config is None:
            raise NotFound(f"Config not found for service: {self.service_name}")
        return copy.deepcopy(config)

    def on_config_update(self, callback: Callback) -> Callback:
        """Call ``callback(new_config)`` after each change; sync or async; usable as a decorator.

        Callbacks run in registration order, one update at a time; one that raises is logged.
        """
        self._callbacks.append(callback)
        return callback

    def bind(self, model: type[M]) -> Bound[M]:
        """A live ``Bound[model]`` whose ``.value`` is always the latest valid config.

        The model joins the client's acceptance check: an update it rejects is not taken at all.
        Bind before ``init_async()`` to check the first config too; binding later raises
        InvalidConfig when the current config (or the safe defaults) do not validate.
        """
        bound: Bound[M] = Bound(model, self.service_name)
        if self.safe_defaults is not None:
            bound.validate(self.safe_defaults, None)
        state = self._state
        value = bound.validate(state.config, state.version) if state.config is not None else None
        bound._set(value, state.version)
        self._bindings.append(bound)
        return bound

    # --- lifecycle -----------------------------------------------------------------------------

    async def init_async(self) -> None:
        """Fetch the initial config (stream, else HTTP API, else LKG file, else safe defaults).

        Starts hot reload when ``enable_nats_updates`` is set. Waits for the stream at most
        ``stream_startup_timeout`` (0.5 s) before trying the next source; the stream keeps
        connecting in the background and takes over when it answers.
        """
        if self._closed:
            raise UsageError(f"ConfigClient for {self.service_name!r} is shut down")
        if self._started and not self._init_lock.locked():
            return
        async with self._init_lock:  # concurrent first calls all return after the first source
            if not self._started:
                self._started = True
                await self._start()
                log.info("config of %s: version %s from %s", self.service_name, self.version, self.source.value)

    async def _start(self) -> None:
        self._hot = self.enable_nats_updates
        if self.settings.nats_url:
            self._spawn(self._run_stream(), "config-stream")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stream_settled.wait(), self.settings.stream_startup_timeout)
            if not self._stream_answered:
                log.warning(
                    "the stream at %s did not answer within %.1f s; %s falls back to the config hub",
                    self.settings.nats_url,
                    self.settings.stream_startup_timeout,
                    self.service_name,
                )
        elif self._hot:
            self._spawn(self._run_sse(), "config-sse")
        if not self.settings.nats_url:
            self._fleet.start_http(self.central_hub_url, self.settings.token, self.settings.http_timeout, self._spawn)
        if not self._stream_answered:
            await self._refresh_from_hub()

    async def subscribe_to_updates(self) -> None:
        """Start hot reload (the stream, or the API's SSE watch without NATS); idempotent."""
        await self.init_async()
        if self._hot:
            return
        self._hot = True
        if not self.settings.nats_url:
            self._spawn(self._run_sse(), "config-sse")
        elif self._nc is not None:
            self._spawn(self._watch(self._nc), "config-watch")
        # else: the connecting stream task starts watching once connected

    async def shutdown(self) -> None:
        """Stop hot reload, deliver queued callbacks, write the LKG file, close connections."""
        if self._closed:
            return
        self._closed = True
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._notifier.close()
        if self._lkg_writer is not None:
            await self._lkg_writer.close()
        connecting, self._connecting = self._connecting, None
        if connecting is not None and self._nc is None:
            await asyncio.wait({connecting}, timeout=self.settings.ledger.connect_timeout + 2)
            if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
                self._nc = connecting.result()
            elif not connecting.done():
                log.warning("abandoning a NATS connect in progress to %s", self.settings.nats_url)
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):  # closing must not raise (the server may be gone)
                await asyncio.wait_for(nc.close(), 5)

    async def __aenter__(self) -> ConfigClient:
        await self.init_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}:{self.service_name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    # --- taking a snapshot ---------------------------------------------------------------------

    def _defaults(self, version: int | None, updated_at: datetime | None, seq: int | None) -> Snapshot:
        config = copy.deepcopy(self.safe_defaults) if self.safe_defaults is not None else None
        return Snapshot(version, config, Source.DEFAULTS, updated_at, seq)

    def _touch(self) -> None:
        """An authoritative source just answered: the cache is fresh for one TTL."""
        self._fresh_until = time.monotonic() + self.cache_ttl_seconds
        self._retry_at = 0.0

    def _offer(self, snap: Snapshot, force: bool = False) -> bool:
        """Take ``snap`` if it moves the config forward; True when the config changed.

        ``force`` (a rollout's candidate in or out) takes it whatever its version."""
        if not force:
            snap = self._fleet.overlay(snap)
        state = self._state
        if snap.source in (Source.STREAM, Source.API):
            self._touch()
        if not force and snap.version is not None and self._high_water is not None and snap.version <= self._high_water:
            if snap.version == state.version and state.source is Source.LKG and snap.source is not Source.LKG:
                self._state = replace(state, source=snap.source, seq=snap.seq)  # confirmed current
            return False
        if snap.config is None:
            if snap.version is None and state.source is Source.DEFAULTS:
                return False  # "no config" while already on the defaults
            new = self._defaults(snap.version, snap.updated_at, snap.seq)
        else:
            new = snap
        models: list[Any] = []
        if new.source is not Source.DEFAULTS and new.config is not None:
            try:
                models = [bound.validate(new.config, new.version) for bound in self._bindings]
            except InvalidConfig as exc:
                log.error(
                    "rejected version %s of %s from %s: %s",
                    new.version,
                    self.service_name,
                    new.source.value,
                    exc.message,
                )
                self._fleet.rejected(new, exc.message)
                return False
        elif new.config is not None:
            models = [bound.validate(new.config, None) for bound in self._bindings]  # checked by bind()
        else:
            models = [None] * len(self._bindings)

        self._state = new
        if new.version is not None:
            self._high_water = new.version if force else max(self._high_water or 0, new.version)
        if self._lkg_writer is not None and snap.source in (Source.STREAM, Source.API):
            self._lkg_writer.submit(snap)
        calls: list[tuple[Callback, Any]] = []
        if self._callbacks:
            argument = new.config if new.config is not None else {}
            calls = [(callback, copy.deepcopy(argument)) for callback in self._callbacks]
        for bound, model in zip(self._bindings, models, strict=True):
            calls.extend(bound._set(model, new.version))
        label = f"{self.service_name} version {new.version} from {snap.source.value}"
        self._notifier.submit(calls, label, self._fleet.after_apply(new, state))
        log.info("config of %s is now version %s (%s)", self.service_name, new.version, new.source.value)
        return True

    def _revert(self, new: Snapshot, previous: Snapshot) -> None:
        """A callback raised on ``new``: keep ``previous`` (reported as rejected by ``client.fleet``)."""
        if self._state is not new:
            return
        self._state, self._high_water = previous, previous.version
        for bound in self._bindings:  # the callbacks are not called again
            model = bound.validate(previous.config, previous.version) if previous.config is not None else None
            bound._set(model, previous.version)
        log.warning("config of %s stays version %s: version %s was rejected", self.service_name,
                    previous.version, new.version)

    # --- pull: refresh on demand ---------------------------------------------------------------

    def _live(self) -> bool:
        return self._stream_live or self._sse_live

    def _needs_refresh(self) -> bool:
        if self._live():
            return False
        now = time.monotonic()
        return now >= self._fresh_until and now >= self._retry_at

    async def _refresh(self, *, force: bool) -> None:
        async with self._refresh_lock:
            if not force and not self._needs_refresh():
                return  # another caller refreshed while this one waited
            if not await self._refresh_from_stream():
                await self._refresh_from_hub()

    async def _refresh_from_stream(self) -> bool:
        nc = self._nc
        if nc is None or not nc.is_connected:
            return False
        try:
            snap = await read_current(nc, self.settings.ledger, self.service_name)
        except LedgerError as exc:
            log.warning("cannot read %s from the stream: %s", self.service_name, exc.message)
            return False
        self._offer(snap)
        return True

    async def _refresh_from_hub(self) -> None:
        """The HTTP API; when it fails, the LKG file (once) and the safe defaults."""
        try:
            snap = await self._http.fetch(self._state.version)
        except LedgerError as exc:
            self._retry_at = time.monotonic() + min(self.cache_ttl_seconds, RETRY_INTERVAL)
            log.warning(
                "config hub unavailable for %s (%s); keeping %s",
                self.service_name,
                exc.message,
                self.source.value,
            )
            self._load_lkg()
            return
        if snap is None:  # 304: what we hold is current
            self._offer(replace(self._state, source=Source.API))
            return
        self._offer(snap)

    def _load_lkg(self) -> None:
        if self._lkg_tried or self._lkg is None or self._state.source is not Source.DEFAULTS:
            return
        self._lkg_tried = True
        snap = self._lkg.load()
        if snap is not None:
            self._offer(snap)

    # --- push: hot reload ----------------------------------------------------------------------

    async def _run_stream(self) -> None:
        """Connect (retrying in the background), then watch or read once."""
        url = self.settings.nats_url
        assert url is not None
        delay, warned = 0.1, False
        while self._nc is None:
            if await nats_reachable(url, self.settings.ledger.connect_timeout):
                # Shielded: cancelling a connect in progress can hang nats-py (see
                # nats_reachable); shutdown() waits for it instead.
                self._connecting = asyncio.ensure_future(
                    nats_io.connect(
                        url,
                        name=f"config-client:{self.service_name}",
                        connect_timeout=self.settings.ledger.connect_timeout,
                        on_disconnect=self._nats_down,
                        on_reconnect=self._nats_back,
                    )
                )
                try:
                    self._nc = await asyncio.shield(self._connecting)
                    self._fleet.start_nats(self._nc, self.settings.ledger, self._spawn)
                    break
                except LedgerError as exc:
                    problem = exc.message
            else:
                problem = f"cannot reach NATS at {url}"
            (log.debug if warned else log.warning)("%s; retrying in the background", problem)
            warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        if self._hot:
            await self._watch(self._nc)
        else:
            self._stream_answered = await self._refresh_from_stream()
            self._stream_settled.set()

    def _nats_down(self) -> None:
        self._stream_live = False

    def _nats_back(self) -> None:
        if self._watcher is not None:
            self._watcher.reconnected()

    async def _watch(self, nc: NATS) -> None:
        watcher = StreamWatcher(nc, self.settings.ledger, self.settings.ledger.subject(self.service_name))
        self._watcher = watcher
        first = True
        try:
            async for item in watcher:
                if item is not None:
                    self._take_stream_msg(item, watcher)
                    continue
                if first and self._seen_seq is None:
                    self._offer(Snapshot(None, None, Source.STREAM))  # an empty subject: no config
                first = False
                self._touch()
                self._stream_live = nc.is_connected
                self._stream_answered = True
                self._stream_settled.set()
        finally:
            self._stream_live = False
            self._watcher = None

    def _take_stream_msg(self, msg: StoredMsg, watcher: StreamWatcher) -> None:
        try:
            entry = Entry.from_stored(msg)
        except LedgerError as exc:
            log.error("skipping stream sequence %d on %s: %s", msg.seq, msg.subject, exc.message)
            self._seen_seq = msg.seq
            return
        event = entry.event
        if event.service != self.service_name:
            log.error("skipping stream sequence %d on %s: an event of %r", msg.seq, msg.subject, event.service)
            self._seen_seq = msg.seq
            return
        if not event.hash_ok():
            log.error(
                "rejected version %d of %s (stream sequence %d): its hash does not recompute",
                event.version,
                self.service_name,
                msg.seq,
            )
            self._seen_seq = msg.seq
            return
        seen = self._seen_version
        if seen is not None and self._seen_seq is not None and event.version > seen + 1:
            if self._gap_resync_from != self._seen_seq:
                log.warning(
                    "version gap on %s: %d after %d; re-reading from stream sequence %d",
                    msg.subject,
                    event.version,
                    seen,
                    self._seen_seq + 1,
                )
                self._gap_resync_from = self._seen_seq
                watcher.resync(self._seen_seq)
                return
            log.warning("the stream itself skips from version %d to %d on %s", seen, event.version, msg.subject)
        self._seen_version = max(seen or 0, event.version)
        self._seen_seq = msg.seq
        self._offer(Snapshot.from_entry(entry))

    async def _run_sse(self) -> None:
        """Hot reload without NATS: the API's SSE watch, reconnecting with backoff."""
        delay, warned = 0.2, False
        while True:
            try:
                async for snap in self._http.watch(after_version=self._high_water):
                    if snap is None:  # connected: what follows is everything after our version
                        self._sse_live = True
                        delay, warned = 0.2, False
                    else:
                        self._offer(snap)
            except LedgerError as exc:
                (log.debug if warned else log.warning)(
                    "SSE watch of %s ended: %s; reconnecting", self.service_name, exc.message
                )
                warned = True
            finally:
                self._sse_live = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
