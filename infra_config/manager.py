"""``InfrastructureConfigManager``: layered files plus environment, with provenance.

::

    config = InfrastructureConfigManager(service_name="central-hub", environment="production")
    await config.load_config()
    db = await config.get_database_config()           # {"host": ..., "port": 5432, ...}
    port = await config.get("databases.postgresql.port")
    print(config.explain("databases.postgresql.port"))  # which file/line or variable won

Layers, lowest priority first (see :mod:`.layers` and :mod:`.envvars`):
``default.*`` and ``infrastructure.yaml`` (10) < ``<service_name>.*`` (40) <
``<environment>.*`` (50) < ``INFRA__*`` environment variables (100).

``config_dir`` defaults to ``$INFRA_CONFIG_DIR`` from ``environ`` when set, else ``./config``.
``environ`` defaults to ``os.environ``, looked up when the manager is constructed (never at
import) and consulted again on every (re)load, for ``INFRA__*`` and ``${VAR}``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .envvars import env_layer
from .errors import ConfigNotLoadedError, ConfigUsageError, KeyNotFoundError
from .explain import Explanation, explain
from .layers import Fingerprint, candidate_files, fingerprint, read_file_layers
from .merge import Merged, merge_layers
from .models import validate
from .redact import redact
from .source import KeyPath, Layer, Source
from .watch import ConfigCallback, ConfigWatcher, ErrorCallback

__all__ = ["CONFIG_DIR_VARIABLE", "InfrastructureConfigManager"]

log = logging.getLogger("infra_config")

CONFIG_DIR_VARIABLE = "INFRA_CONFIG_DIR"
_DEFAULT_CONFIG_DIR = "config"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RESERVED = {"default", "infrastructure"}
_CACHE_TYPES = {"dragonfly", "dragonflydb", "redis", "valkey", "keydb", "memcached"}

_MISSING: Any = object()


@dataclass(frozen=True)
class _Loaded:
    data: dict[str, Any]
    merged: Merged
    secret_paths: frozenset[KeyPath]
    files: tuple[str, ...]
    fingerprint: Fingerprint


class InfrastructureConfigManager:
    """Load, merge, validate and explain one service's infrastructure configuration."""

    def __init__(
        self,
        service_name: str,
        environment: str = "development",
        config_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        layers: Sequence[Layer] = (),
        read_files: bool = True,
    ) -> None:
        """``layers`` are merged with the files and ``INFRA__*`` by priority (a process's
        built-in defaults, its plain environment variables, a test's dict); with
        ``read_files=False`` no file is read (environment and ``layers`` only)."""
        _check_name("service_name", service_name)
        _check_name("environment", environment)
        if service_name == environment:
            raise ConfigUsageError(
                f"service_name and environment must differ (both are {service_name!r})"
            )
        self._service_name = service_name
        self._environment = environment
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        if config_dir is None:
            config_dir = self._environ.get(CONFIG_DIR_VARIABLE) or _DEFAULT_CONFIG_DIR
        self._config_dir = Path(config_dir)
        self._extra_layers = tuple(layers)
        self._read_files = read_files
        self._loaded: _Loaded | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = f"{len(self._loaded.files)} files" if self._loaded else "not loaded"
        return (
            f"InfrastructureConfigManager(service_name={self._service_name!r}, "
            f"environment={self._environment!r}, config_dir={str(self._config_dir)!r}, "
            f"{state})"
        )

    @property
    def service_name(self) -> str:
        return self._service_name

    @property
    def environment(self) -> str:
        return self._environment

    @property
    def config_dir(self) -> Path:
        return self._config_dir

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    @property
    def files(self) -> tuple[str, ...]:
        """The files that made the current configuration, lowest priority first."""
        return self._require().files

    def watched_files(self) -> tuple[Path, ...]:
        """Every path whose appearance, change or removal changes the configuration."""
        groups = candidate_files(self._config_dir, self._service_name, self._environment)
        return tuple(path for _, _, paths in groups for path in paths)

    # -- loading ---------------------------------------------------------------------------

    async def load_config(self) -> None:
        """Read every layer and replace the current configuration.

        Raises an :class:`~.errors.InfraConfigError` subclass on any problem; the previous
        configuration (if any) is then kept unchanged.
        """
        async with self._lock:
            loaded = await asyncio.to_thread(self._build)
            self._loaded = loaded
        log.info(
            "loaded infrastructure config for %s (%s) from %s",
            self._service_name,
            self._environment,
            ", ".join(loaded.files) or "environment variables only",
        )
        log.debug("effective infrastructure config: %s", self._redacted(loaded))

    def load_config_sync(self) -> None:
        """:meth:`load_config` for a composition root that has no event loop yet."""
        self._loaded = self._build()

    async def reload(self) -> None:
        """Load again from files and environment (same contract as :meth:`load_config`)."""
        await self.load_config()

    def _build(self) -> _Loaded:
        # Stat before reading: a change made while we read shows up as a new fingerprint.
        stamp = fingerprint(self.watched_files())
        if not self._read_files:
            file_layers: list[Layer] = []
        else:
            file_layers = read_file_layers(
                self._config_dir, self._service_name, self._environment, self._environ
            )
        from_files = merge_layers([*self._extra_layers, *file_layers])
        merged = merge_layers(
            [*self._extra_layers, *file_layers, env_layer(self._environ, from_files.data)]
        )
        secret_paths = _secret_paths(merged)

        def locate(path: KeyPath) -> Source | None:
            winner = merged.winner(path)
            return winner.layer.source_at(path) if winner is not None else None

        data = validate(merged.data, locate=locate, secret_paths=secret_paths)
        files = tuple(layer.origin.file for layer in file_layers if layer.origin.file)
        return _Loaded(data, merged, secret_paths, files, stamp)

    # -- reading ---------------------------------------------------------------------------

    async def get(self, key: str | Sequence[str], default: Any = None) -> Any:
        """The value at a dotted ``key`` (``"databases.postgresql.host"``), or ``default``.

        Mappings and lists are returned as copies. A numeric part indexes a list
        (``"alerts.0.severity"``); pass a sequence of parts for keys that contain dots.
        """
        loaded = self._require()
        path = _to_path(loaded.data, key)
        value = _lookup(loaded.data, path, _MISSING)
        return default if value is _MISSING else copy.deepcopy(value)

    async def get_database_config(self, name: str | None = None) -> dict[str, Any]:
        """One entry of ``databases``.

        With no name: the entry marked ``primary: true``, else ``postgresql``, else the
        first one declared.
        """
        return self._section_entry("databases", name, preferred="postgresql")

    async def get_messaging_config(self, name: str | None = None) -> dict[str, Any]:
        """One entry of ``messaging`` (no name: the ``primary: true`` one, else the first)."""
        return self._section_entry("messaging", name, preferred=None)

    async def get_cache_config(self) -> dict[str, Any]:
        """The ``cache`` section; without one, the first database of a cache type
        (``dragonfly``, ``redis``, ``valkey``...), matched by ``type`` or by name."""
        data = self._require().data
        cache = data.get("cache")
        if isinstance(cache, dict):
            return copy.deepcopy(cache)
        for db_name, entry in (data.get("databases") or {}).items():
            kind = str(entry.get("type") or "").lower() if isinstance(entry, dict) else ""
            if kind in _CACHE_TYPES or db_name.lower() in _CACHE_TYPES:
                return copy.deepcopy(entry)
        raise KeyNotFoundError("cache", "no cache section and no cache-type database")

    def get_all(self) -> dict[str, Any]:
        """A deep copy of the whole configuration (secrets included: handle with care)."""
        return copy.deepcopy(self._require().data)

    def redacted(self) -> dict[str, Any]:
        """A copy of the whole configuration with every secret replaced by ``"***"``."""
        return self._redacted(self._require())

    def explain(self, key: str | Sequence[str]) -> Explanation:
        """Which layer set ``key`` (file and line, or variable) and which values it overrode.

        Secrets are redacted in the result. Raises :class:`~.errors.KeyNotFoundError`.
        """
        loaded = self._require()
        return explain(loaded.merged, loaded.data, _to_path(loaded.data, key), loaded.secret_paths)

    def watch(
        self,
        callback: ConfigCallback | None = None,
        *,
        interval: float = 1.0,
        on_error: ErrorCallback | None = None,
    ) -> ConfigWatcher:
        """A :class:`~.watch.ConfigWatcher` that reloads when a config file changes.

        Use it as ``async with config.watch(callback, interval=1.0) as watcher:``; see
        :mod:`.watch`.
        """
        return ConfigWatcher(self, callback, interval=interval, on_error=on_error)

    # -- helpers ---------------------------------------------------------------------------

    def _loaded_fingerprint(self) -> Fingerprint | None:
        # For ConfigWatcher: the state of the files the current configuration was read from.
        return self._loaded.fingerprint if self._loaded is not None else None

    def _require(self) -> _Loaded:
        if self._loaded is None:
            raise ConfigNotLoadedError("configuration not loaded: await load_config() first")
        return self._loaded

    @staticmethod
    def _redacted(loaded: _Loaded) -> dict[str, Any]:
        result = redact(loaded.data, secret_paths=loaded.secret_paths)
        assert isinstance(result, dict)
        return result

    def _section_entry(
        self, section: str, name: str | None, *, preferred: str | None
    ) -> dict[str, Any]:
        entries = self._require().data.get(section) or {}
        if name is None:
            name = _choose(entries, preferred)
            if name is None:
                raise KeyNotFoundError(section, "the section is empty")
        entry = entries.get(name)
        if not isinstance(entry, dict):
            known = ", ".join(entries) or "none"
            raise KeyNotFoundError(f"{section}.{name}", f"known: {known}")
        return copy.deepcopy(entry)


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigUsageError(
            f"{what} must be a name of letters, digits, '.', '_' or '-', got {value!r}"
        )
    if value in _RESERVED:
        raise ConfigUsageError(f"{what} must not be {value!r}: that file name is reserved")


def _choose(entries: Mapping[str, Any], preferred: str | None) -> str | None:
    for name, entry in entries.items():
        if isinstance(entry, dict) and entry.get("primary") is True:
            return name
    if preferred is not None and preferred in entries:
        return preferred
    return next(iter(entries), None)


def _to_path(data: Mapping[str, Any], key: str | Sequence[str]) -> KeyPath:
    if isinstance(key, str):
        parts: Sequence[str] = key.split(".")
        if not key or any(not part for part in parts):
            raise ConfigUsageError(f"malformed key {key!r}: expected a dotted path like a.b.c")
    else:
        parts = key
        if not parts:
            raise ConfigUsageError("empty key")
    path: list[str | int] = []
    level: Any = data
    for part in parts:
        if isinstance(level, list) and part.isdigit():
            path.append(int(part))
            level = level[int(part)] if int(part) < len(level) else None
        else:
            path.append(part)
            level = level.get(part) if isinstance(level, Mapping) else None
    return tuple(path)


def _lookup(data: Any, path: KeyPath, default: Any) -> Any:
    level = data
    for part in path:
        if isinstance(level, Mapping) and part in level:
            level = level[part]
        elif isinstance(level, list) and isinstance(part, int) and part < len(level):
            level = level[part]
        else:
            return default
    return level


def _secret_paths(merged: Merged) -> frozenset[KeyPath]:
    """Interpolated paths whose layer still wins at that key."""
    found = set()
    for layer in merged.layers:
        for path in layer.interpolated:
            end = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            entries = merged.history.get(path[:end])
            if entries and entries[-1].layer is layer:
                found.add(path)
    return frozenset(found)
