"""Reload when a configuration file changes; notify callbacks and async iterators.

Polls file metadata (mtime, size, inode — no extra dependency) every ``interval`` seconds::

    async def on_change(config: dict) -> None: ...

    async with manager.watch(on_change, interval=1.0) as watcher:
        async for config in watcher:   # the current config first, then each new one
            ...

Nothing is replayed, so the "caught up" point is simply the first item: the configuration
current when iteration began. A slow iterator sees only the newest configuration, never a
backlog. Callbacks (sync or async) receive a copy of each new configuration, one after the
other; a failing callback is logged and the others still run. A reload that fails (bad YAML,
wrong type, missing variable) keeps the previous configuration, is logged and passed to
``on_error``; the same broken files are not retried until they change again.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import ConfigUsageError, InfraConfigError
from .layers import Fingerprint, fingerprint

if TYPE_CHECKING:
    from .manager import InfrastructureConfigManager

__all__ = ["ConfigCallback", "ConfigWatcher", "ErrorCallback"]

log = logging.getLogger("infra_config.watch")

ConfigCallback = Callable[[dict[str, Any]], Awaitable[object] | object]
ErrorCallback = Callable[[InfraConfigError], Awaitable[object] | object]


class ConfigWatcher:
    """Polls the manager's files and reloads on change. An async context manager."""

    def __init__(
        self,
        manager: InfrastructureConfigManager,
        callback: ConfigCallback | None = None,
        *,
        interval: float = 1.0,
        on_error: ErrorCallback | None = None,
    ) -> None:
        if not interval > 0:
            raise ConfigUsageError(f"interval must be greater than zero, got {interval!r}")
        self._manager = manager
        self._interval = interval
        self._callbacks: list[ConfigCallback] = [callback] if callback is not None else []
        self._on_error = on_error
        self._version = 0
        self._changed = asyncio.Condition()
        self._failed: Fingerprint | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def reloads(self) -> int:
        """How many successful reloads this watcher has made."""
        return self._version

    def add_callback(self, callback: ConfigCallback) -> None:
        self._callbacks.append(callback)

    async def start(self) -> None:
        """Load the configuration if needed and start polling (idempotent)."""
        if self._closed:
            raise ConfigUsageError("this watcher is closed")
        if self._task is not None:
            return
        if not self._manager.loaded:
            await self._manager.load_config()
        self._task = asyncio.create_task(self._run(), name="infra_config.watch")

    async def close(self) -> None:
        """Stop polling, end every ``async for`` over this watcher, and wait for the task."""
        self._closed = True
        async with self._changed:
            self._changed.notify_all()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> ConfigWatcher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def check(self) -> bool:
        """Reload now if a watched file changed; True when a new configuration was loaded."""
        current = await asyncio.to_thread(fingerprint, self._manager.watched_files())
        if current == self._manager._loaded_fingerprint() or current == self._failed:
            return False
        try:
            await self._manager.reload()
        except InfraConfigError as exc:
            self._failed = current
            log.error("config reload failed, keeping the previous configuration: %s", exc)
            await _call(self._on_error, exc)
            return False
        self._failed = None
        self._version += 1
        async with self._changed:
            self._changed.notify_all()
        log.info("infrastructure config reloaded (reload #%d)", self._version)
        config = self._manager.get_all()
        for callback in list(self._callbacks):
            await _call(callback, copy.deepcopy(config))  # callbacks cannot affect each other
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)  # the polling period, not synchronisation
            try:
                await self.check()
            except Exception:  # a bug must not end watching silently
                log.exception("config watcher: unexpected error while checking for changes")

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        seen = -1

        def ready() -> bool:
            return self._closed or self._version != seen

        while True:
            async with self._changed:
                await self._changed.wait_for(ready)
                if self._closed:
                    return
                seen = self._version
            yield self._manager.get_all()


async def _call(callback: Callable[[Any], object] | None, arg: Any) -> None:
    if callback is None:
        return
    try:
        result = callback(arg)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("config watch callback %r failed", callback)
