"""``python -m rollout run``: the rollout controller (one active, the others hot standbys).

Settings from the environment: DATABASE_URL (required: the leader lock), NATS_URL,
LEDGER_STREAM, LEDGER_SUBJECT_PREFIX, ROLLOUT_INSTANCE_TTL_S (30: an instance silent that long
is dead and out of every cohort), ROLLOUT_TICK_MS (200), ROLLOUT_LOCK_POLL_MS (200: how often a
standby tries the leader lock, which bounds the failover time).

Exit codes: 0 stopped by SIGINT/SIGTERM, 2 usage error (bad setting).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from ledger import LedgerSettings, event_loop
from ledger.errors import UsageError

from .runner import run_controller


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}: not a number: {raw!r}") from None
    if value <= 0:
        raise UsageError(f"{name}: must be > 0")
    return value


async def _run() -> None:
    settings = LedgerSettings.from_env(os.environ)
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise UsageError("DATABASE_URL is required (the controller's leader lock lives in PostgreSQL)")
    ttl = _float("ROLLOUT_INSTANCE_TTL_S", 30.0)
    tick = _float("ROLLOUT_TICK_MS", 200.0) / 1000
    lock_poll = _float("ROLLOUT_LOCK_POLL_MS", 200.0) / 1000
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_controller(settings, url, stop, ttl_s=ttl, tick=tick, lock_poll=lock_poll,
                         on_leader=lambda: print("rollout controller: leader", flush=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    try:
        event_loop.run(_run())
    except UsageError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
