"""Crash safety: ``kill -9`` the projector process at random points (at least 10 times) while
5,000 changes are appended over 20 services; after a final run PostgreSQL equals the stream,
with no duplicate or missing version, and the checkpoint is the stream's last sequence."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from typing import Any

from ledger import Ledger, Patch, Replace
from projector import ProjectorSettings, read_status
from tests.support.waiting import wait_for

from .helpers import (
    Processes,
    assert_projection_equals,
    assert_versions_contiguous,
    env_for,
    stream_messages,
    wait_exit,
)

SERVICES = [f"crash-{i:02d}" for i in range(20)]
TOTAL = 5000
PHASES = 12  # each ends with a kill -9, so at least 10 kills happen during the appends


async def _checkpoint(pg: Any) -> int:
    try:
        return int(await pg.fetchval("SELECT last_seq FROM projector_checkpoint WHERE id = 1") or 0)
    except Exception:  # noqa: BLE001 - before the first migration the table does not exist
        return 0


async def _connected(pg: Any, pid: int) -> bool:
    return bool(
        await pg.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1", f"projector %:{pid}"
        )
    )


async def test_kill9_at_random_points_loses_and_duplicates_nothing(
    ledger: Ledger, projector_settings: ProjectorSettings, pg: Any, procs: Processes
) -> None:
    seed = int(time.time() * 1000)
    rng = random.Random(seed)
    env = env_for(projector_settings, PROJECTOR_BATCH_SIZE="100", PROJECTOR_BATCH_DELAY_MS="5")
    appended = 0

    async def append(n: int) -> None:
        nonlocal appended
        for _ in range(n // len(SERVICES)):
            first = appended < len(SERVICES)
            await asyncio.gather(
                *(
                    ledger.append(s, Replace({"n": appended}) if first else Patch({"n": appended, "s": s}), actor="t")
                    for s in SERVICES
                )
            )
            appended += len(SERVICES)

    chunk = TOTAL // PHASES // len(SERVICES) * len(SERVICES)
    kills: list[str] = []

    async def phase(number: int, size: int) -> None:
        start_appended, start_cp = appended, await _checkpoint(pg)
        proc = procs.spawn(env, "run")
        writer = asyncio.create_task(append(size))
        where = rng.choice(["startup", "projecting", "projecting", "projecting"])
        if where == "startup":  # while it migrates, waits for the lock or loads its state
            await wait_for(lambda: _connected(pg, proc.pid), timeout=30, what="the projector to connect")
        else:  # after it applied a random number of events (mid-batch, mid-commit or idle)
            threshold = start_appended + rng.randrange(size)
            await wait_for(
                lambda: appended >= threshold or writer.done(), timeout=60, what="appends to progress"
            )
            target = start_cp + rng.randint(1, 600)
            await wait_for(
                lambda: _advanced(pg, min(target, appended) - 1),
                timeout=60,
                what=f"phase {number} to apply up to {target}",
            )
        assert proc.poll() is None, procs.stderr(proc)
        procs.kill9(proc)
        kills.append(f"{where}@{await _checkpoint(pg)}")
        await writer

    for number in range(PHASES):
        await phase(number, chunk if number < PHASES - 1 else TOTAL - chunk * (PHASES - 1))
    assert appended == TOTAL and len(kills) >= 10

    final = procs.spawn(env, "run")
    last = await ledger.js.stream_info(ledger.settings.stream)
    assert last.state.last_seq == TOTAL
    await wait_for(lambda: _caught_up(pg, TOTAL), timeout=60, what="the final run to catch up")
    # The checkpoint may have reached TOTAL before the last kill: wait for the final process itself
    # to lead (it then has its signal handlers and has read the checkpoint), not only for the data.
    await wait_for(lambda: _leading(pg, final.pid), timeout=60, what="the final run to take the lead")
    final.send_signal(signal.SIGTERM)
    assert await wait_exit(final, timeout=15) == 0, procs.stderr(final)

    context = f"seed {seed}, kills {kills}"
    await assert_versions_contiguous(pg)
    await assert_projection_equals(pg, await stream_messages(ledger.nc, projector_settings))
    counts = await pg.fetchrow("SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM config_versions")
    assert (counts["n"], counts["ids"]) == (TOTAL, TOTAL), context
    status = await read_status(pg)
    assert (status.state, status.last_applied_seq, status.failed_seq) == ("stopped", TOTAL, None), context


async def _advanced(pg: Any, since: int) -> bool:
    return await _checkpoint(pg) > since


async def _leading(pg: Any, pid: int) -> bool:
    status = await read_status(pg)
    return status.state == "running" and (status.instance or "").endswith(f":{pid}")


async def _caught_up(pg: Any, total: int) -> bool:
    return await _checkpoint(pg) == total
