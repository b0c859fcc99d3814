"""Retrying NATS requests through a leader election or a reconnect, up to the write deadline.

A request that timed out or found JetStream temporarily unable to answer (``StoreTimeout``,
``TemporarilyUnavailable``: no stream leader yet, no responders, a reconnect to another node) is
sent again, the same request, with a growing pause (20 ms doubling to 250 ms), until
``deadline_s``; then ``StoreTimeout``. Used by ``Ledger`` for its reads and for its CAS publish
(same ``Nats-Msg-Id``, same expected sequence: a retry is never a duplicate).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import StoreTimeout, TemporarilyUnavailable

__all__ = ["within_deadline"]

log = logging.getLogger("ledger")

T = TypeVar("T")


async def within_deadline(
    call: Callable[[float], Awaitable[T]],
    *,
    what: str,
    deadline_s: float,
    request_timeout: float,
    ambiguous: bool = False,
) -> T:
    """``await call(timeout)`` until it answers or ``deadline_s`` has passed.

    ``ambiguous``: the request may have taken effect without an answer (a publish): the final
    error says so, and to retry with the same idempotency key.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    pause, attempts = 0.02, 0
    while True:
        attempts += 1
        try:
            return await call(max(0.05, min(request_timeout, deadline - loop.time())))
        except (StoreTimeout, TemporarilyUnavailable) as exc:
            left = deadline - loop.time()
            if left <= 0:
                outcome = (
                    "; it may or may not be stored: retry with the same idempotency key"
                    if ambiguous else "; nothing was written"
                )
                raise StoreTimeout(
                    f"NATS did not answer ({what}) within the {deadline_s:g} s write deadline "
                    f"({attempts} tries, last: {exc.message}){outcome}"
                ) from None
            if attempts == 2:
                log.info("%s: no answer yet (%s); retrying until the write deadline", what, exc.message)
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)
