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

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # a base install (the client library): the standard loop
        return asyncio.run(main)
    return uvloop.run(main)
