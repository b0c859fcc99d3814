"""The API served as ``python -m api`` serves it (``api.__main__.serve``: the guarded site with
its connection limits), in the test's event loop on a free port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from api.__main__ import serve

from .helpers import Stack


@contextlib.asynccontextmanager
async def live_api(stack: Stack, **overrides: Any) -> AsyncIterator[tuple[str, int]]:
    """Yield ``(host, port)`` of a running API on ``stack``; shut it down gracefully after."""
    settings = stack.api_settings(host="127.0.0.1", port=0, **overrides)
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, ready=port.set_result, stop=stop, freeze_gc=False))
    done, _ = await asyncio.wait({task, port}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what stopped it
    if port not in done:
        task.cancel()
        raise TimeoutError("the API did not start within 60 s")
    try:
        yield settings.host, port.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
