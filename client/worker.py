"""Closing a background worker task: let it finish its queue (bounded), then cancel it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["close_worker"]


async def close_worker(
    task: asyncio.Task[None] | None, flush: Callable[[], Awaitable[None]], timeout: float
) -> None:
    """Wait for ``flush()`` at most ``timeout`` s, then cancel ``task`` and await it."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(flush(), timeout)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
