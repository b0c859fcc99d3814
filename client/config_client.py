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
import copy
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from infra_config.settings import explicit_layer
from ledger import LedgerSettings, validate_service_name
from ledger.errors import NotFound, UsageError

from .binding import Bound
from .fleet import FleetMember
from .holder import ConfigHolder
from .http_source import HttpSource
from .lkg import LastKnownGood, LkgWriter
from .notify import Callback
from .schema_guard import SchemaGuard
from .settings import ClientSettings
from .snapshot import Source
from .sources import Sources

__all__ = ["ConfigClient"]

log = logging.getLogger("client")

M = TypeVar("M", bound=BaseModel)


class ConfigClient:
    """One service's config from the ledger (see the module docstring).

    The parts: ``ClientSettings`` (where the sources are), a ``ConfigHolder`` (what is held and
    the rule for taking a new version), ``Sources`` (which source to ask, and the feeds that push
    changes). This class wires them and keeps the reference document's public surface.
    """

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
        environ = os.environ if environ is None else environ
        given = {
            "hub.url": central_hub_url,
            "hub.token": token,
            "client.http_timeout": http_timeout,
            "client.stream_startup_timeout": stream_startup_timeout,
        }
        explicit: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
        if nats_url:
            explicit["nats.url"] = nats_url
        settings = ClientSettings.from_env(environ, layers=[explicit_layer(explicit)]).with_lkg_default(environ)
        if nats_url == "":  # the stream off, whatever $NATS_URL says
            settings = settings.model_copy(update={"nats_url": None})
        if ledger_settings is not None:
            settings = settings.model_copy(update={"ledger": ledger_settings})
        self.settings: ClientSettings = settings
        self.cache_ttl_seconds = cache_ttl_seconds
        self.enable_nats_updates = enable_nats_updates

        if lkg_path is False:
            self._lkg: LastKnownGood | None = None
        elif lkg_path is not None and lkg_path is not True:
            self._lkg = LastKnownGood(lkg_path, self.service_name)
        elif settings.lkg_dir is not None:
            self._lkg = LastKnownGood(settings.lkg_dir / f"{self.service_name}.json", self.service_name)
        else:
            self._lkg = None
        self._holder = ConfigHolder(
            self.service_name,
            safe_defaults,
            cache_ttl=cache_ttl_seconds,
            lkg_writer=LkgWriter(self._lkg) if self._lkg else None,
        )
        self._http = HttpSource(
            settings.central_hub_url, self.service_name, token=settings.token, timeout=settings.http_timeout
        )
        self._sources = Sources(self.service_name, settings, self._holder, http=self._http, lkg=self._lkg)
        self._fleet = FleetMember(self._holder, self.service_name, instance_id, labels, heartbeat_s)
        self._sources.on_connected = lambda nc, spawn: self._fleet.start_nats(nc, settings.ledger, spawn)
        self._init_lock = asyncio.Lock()
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"ConfigClient({self.service_name!r}, source={self.source.value}, version={self.version})"
        )

    # --- what the client holds -----------------------------------------------------------------

    @property
    def safe_defaults(self) -> dict[str, Any] | None:
        return self._holder.safe_defaults

    @property
    def source(self) -> Source:
        """Where the current config came from: ``stream``, ``api``, ``lkg`` or ``defaults``."""
        return self._holder.state.source

    @property
    def version(self) -> int | None:
        """The ledger version of the current config (of the deletion, after one); None if unknown."""
        return self._holder.state.version

    @property
    def instance_id(self) -> str:
        """This instance's id in the fleet (acknowledgements, rollout stages)."""
        return self._fleet.instance_id

    @property
    def updated_at(self) -> datetime | None:
        return self._holder.state.updated_at

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
        node: Any = self._holder.state.config
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
            if force_refresh or self._sources.needs_refresh():
                await self._sources.refresh(force=force_refresh)
        config = self._holder.state.config
        if config is None:
            raise NotFound(f"Config not found for service: {self.service_name}")
        return copy.deepcopy(config)

    def on_config_update(self, callback: Callback) -> Callback:
        """Call ``callback(new_config)`` after each change; sync or async; usable as a decorator.

        Callbacks run in registration order, one update at a time; one that raises is logged.
        """
        self._holder.callbacks.append(callback)
        return callback

    def bind(self, model: type[M]) -> Bound[M]:
        """A live ``Bound[model]`` whose ``.value`` is always the latest valid config.

        The model joins the client's acceptance check: an update it rejects is not taken at all.
        Bind before ``init_async()`` to check the first config too; binding later raises
        InvalidConfig when the current config (or the safe defaults) do not validate.
        """
        bound: Bound[M] = Bound(model, self.service_name)
        self._holder.bind(bound)
        return bound

    def require_schema(self, schema: dict[str, Any]) -> None:
        """Opt-in: accept only documents that satisfy ``schema`` (e.g. the one in force,
        ``(await ledger.schema_in_force(service)).config``); see ``client.schema_guard``."""
        guard = SchemaGuard(schema, self.service_name)
        if self.safe_defaults is not None:
            guard.validate(self.safe_defaults, None)
        state = self._holder.state
        if state.config is not None and state.source is not Source.DEFAULTS:
            guard.validate(state.config, state.version)
        self._holder.checks.append(guard.validate)

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
                if not self.settings.nats_url:  # acknowledgements through the API instead
                    self._fleet.start_http(self.settings.central_hub_url, self.settings.token,
                                           self.settings.http_timeout, self._sources._spawn)
                await self._sources.start(hot=self.enable_nats_updates)
                log.info("config of %s: version %s from %s", self.service_name, self.version, self.source.value)

    async def subscribe_to_updates(self) -> None:
        """Start hot reload (the stream, or the API's SSE watch without NATS); idempotent."""
        await self.init_async()
        self._sources.subscribe()

    async def shutdown(self) -> None:
        """Stop hot reload, deliver queued callbacks, write the LKG file, close connections."""
        if self._closed:
            return
        self._closed = True
        await self._sources.close()
        await self._holder.notifier.close()
        if self._holder.lkg_writer is not None:
            await self._holder.lkg_writer.close()

    async def __aenter__(self) -> ConfigClient:
        await self.init_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
