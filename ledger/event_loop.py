"""``run``: the event loop of the hub's own processes (api, projector, the stack, the CLI).

uvloop when it is installed (the ``[server]`` extra installs it; measured in ``bench``: about
15 % less CPU per HTTP write and 1.3-1.5x the stream-replay rate of the stdlib loop on the same
machine), else the standard library's loop. A library user's ``ConfigClient`` runs on whatever
loop the service already has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run", "raise_if_cancelling"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # a base install (the client library): the standard loop
        return asyncio.run(main)
    return uvloop.run(main)


def raise_if_cancelling() -> None:
    """Re-raise a cancellation of the current task that an ``await`` swallowed.

    On Python 3.11 ``asyncio.wait_for`` returns the result instead of raising when the task is
    cancelled just as the awaited thing completes; nats-py waits for every request that way. A
    loop that must stop when cancelled (a stream watcher) calls this before it blocks again.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
