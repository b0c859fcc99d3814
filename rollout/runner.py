"""``run_controller``: wait for the leader lock, then run controller passes until stopped.

The lock is a PostgreSQL session advisory lock (``projector.leader.LeaderLock`` in a namespace
of its own): when the leader dies its session ends and a standby polling every ``lock_poll``
seconds takes over. Every append is fenced (``LeaderLock.check``) and CAS-checked, so a leader
that lost the lock cannot decide. Passes run every ``tick`` seconds, sooner when a fleet event
or an ack arrives (a core subscription, used only as a wake-up hint).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ledger import Ledger, LedgerSettings, nats_io
from ledger.errors import LedgerError
from projector import db
from projector.errors import LeadershipLost
from projector.leader import LeaderLock

from .controller import Controller

__all__ = ["run_controller", "ROLLOUT_LOCK_NAMESPACE"]

log = logging.getLogger("rollout")

ROLLOUT_LOCK_NAMESPACE = 0x524F4C4C  # "ROLL"


async def run_controller(
    settings: LedgerSettings,
    database_url: str,
    stop: asyncio.Event,
    *,
    ttl_s: float = 30.0,
    tick: float = 0.2,
    lock_poll: float = 0.2,
    on_leader: Callable[[], None] | None = None,
) -> None:
    """Run until ``stop`` is set; NATS/PostgreSQL outages are retried, never fatal."""
    delay = 0.2
    while not stop.is_set():
        try:
            await _session(settings, database_url, stop, ttl_s, tick, lock_poll, on_leader)
            delay = 0.2
        except (LedgerError, LeadershipLost, OSError) as exc:
            log.warning("rollout controller: %s; retrying in %.1f s", getattr(exc, "message", exc), delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = min(delay * 2, 5.0)


async def _session(
    settings: LedgerSettings,
    database_url: str,
    stop: asyncio.Event,
    ttl_s: float,
    tick: float,
    lock_poll: float,
    on_leader: Callable[[], None] | None,
) -> None:
    conn = await db.connect(database_url, application_name="config-ledger-rollout")
    try:
        lock = LeaderLock(conn, namespace=ROLLOUT_LOCK_NAMESPACE)
        if not await lock.acquire(stop, poll=lock_poll):
            return
        log.info("rollout controller is the leader")
        if on_leader is not None:
            on_leader()
        nc = await nats_io.connect(settings.nats_url, name="config-ledger-rollout",
                                   connect_timeout=settings.connect_timeout)
        try:
            await _lead(Ledger(nc, settings), lock, stop, ttl_s, tick)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5)
    finally:
        await db.close(conn)


async def _lead(ledger: Ledger, lock: LeaderLock, stop: asyncio.Event, ttl_s: float, tick: float) -> None:
    wake = asyncio.Event()

    async def hint(_msg: object) -> None:
        wake.set()

    settings = ledger.settings
    subs = [await ledger.nc.subscribe(settings.rollout_wildcard, cb=hint),
            await ledger.nc.subscribe(settings.acks_wildcard(), cb=hint)]
    controller = Controller(ledger, ttl_s=ttl_s, fence=lock.check)
    last_check = time.monotonic()
    try:
        while not stop.is_set():
            wake.clear()
            await controller.step()
            if time.monotonic() - last_check > 1.0:  # notice a lost lock even when idle
                await lock.check()
                last_check = time.monotonic()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick):
                    waiter = asyncio.ensure_future(wake.wait())
                    stopper = asyncio.ensure_future(stop.wait())
                    try:
                        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waiter.cancel()
                        stopper.cancel()
            await asyncio.sleep(0.02)  # coalesce a burst of acks into one pass
    finally:
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
