"""Update callbacks: sync or async, run in registration order, one update at a time.

Callbacks run in a task of their own, so a slow callback delays the next callback, never the
stream; and a callback that calls back into the client (``get_config()``) cannot deadlock it.
A callback that raises is logged and the others still run.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from .worker import close_worker

__all__ = ["Notifier", "Callback"]

log = logging.getLogger("client.callbacks")

Callback = Callable[[Any], Any]  # returns None, or an awaitable for async callbacks
Done = Callable[[list[str]], None]  # called with the errors of an update's callbacks (empty: all ran)


class Notifier:
    """A queue of updates and the task that delivers them."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Sequence[tuple[Callback, Any]], str, Done | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def submit(self, calls: Sequence[tuple[Callback, Any]], label: str, on_done: Done | None = None) -> None:
        """Queue ``callback(argument)`` for each pair, in order; ``label`` names the update in logs.

        ``on_done(errors)`` runs after the update's callbacks (at once when there are none)."""
        if not calls:
            if on_done is not None:
                on_done([])
            return
        self._queue.put_nowait((calls, label, on_done))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="config-callbacks")

    async def _run(self) -> None:
        while True:
            calls, label, on_done = await self._queue.get()
            try:
                errors = [e for callback, argument in calls if (e := await _call(callback, argument, label))]
                if on_done is not None:
                    try:
                        on_done(errors)
                    except Exception:  # noqa: BLE001 - reporting must not stop the notifier
                        log.exception("after-update hook failed for %s", label)
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued update has been delivered."""
        if self._task is not None and not self._task.done():
            await self._queue.join()

    async def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded by ``timeout``), then stop the task."""
        task = self._task
        await close_worker(task, self.flush, timeout)
        self._task = None


async def _call(callback: Callback, argument: Any, label: str) -> str | None:
    """Run one callback; its error as text (None when it returned)."""
    try:
        result = callback(argument)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # noqa: BLE001 - a callback's failure must not stop the others or the client
        name = getattr(callback, "__qualname__", repr(callback))
        log.exception("config update callback %s failed for %s", name, label)
        return f"{name}: {type(exc).__name__}: {exc}"[:2000]
    return None
