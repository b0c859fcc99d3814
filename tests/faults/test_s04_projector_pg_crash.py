"""Scenario 4: kill -9 the projector at random points; PostgreSQL crashes (-m immediate).

Writes keep going through the API (NATS is fine, so they are acknowledged — 202 while the
projection lags). The projector is SIGKILLed at random points and restarted; every other cycle
PostgreSQL is stopped with ``-m immediate`` (no checkpoint, crash recovery on start) while the
projector runs. At the end the projector catches up and PostgreSQL equals the stream row for
row: no event lost, none applied twice, the checkpoint at the stream's last sequence.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from ops.embedded import NatsServer, PostgresServer
from tests.support.waiting import wait_for

from .conftest import SCALE, FaultReport, scaled
from .procs import ProcGroup
from .scenario import Load
from .stack import Stack, pg_rows
from .test_known_bugs import PROJECTOR_HANG

SERVICES = ["proj-a", "proj-b"]
API_ENV = {"API_WRITE_WAIT_MS": "500"}


@pytest.mark.timeout(180 + 90 * SCALE)
async def test_kill9_projector_and_crash_postgres(
    nats_server: NatsServer, private_pg: PostgresServer, procs: ProcGroup, tmp_path: Path,
    fault_report: FaultReport,
) -> None:
    stack = Stack(procs=procs, nats=nats_server, database_url=private_pg.url(), work_dir=tmp_path)
    await stack.provision()
    stack.start_projector()
    stack.start_api(env=API_ENV)
    await stack.wait_ready(timeout=60)
    load = Load(stack)
    await load.http_writers(SERVICES, per_service=min(2 * SCALE, 8), pace=0.01, timeout=6, give_up_after=60)
    await load.http_readers(SERVICES, pace=0.1)
    await load.sse_watchers(SERVICES)  # SSE ends when PostgreSQL goes; they resume
    await load.start()
    projector = stack.projector
    assert projector is not None
    kills = pg_crashes = exits = 0
    for cycle in range(scaled(6)):
        await load.wait_acks(3, after=time.monotonic(), timeout=30, what="writes to flow")
        await asyncio.sleep(random.uniform(0.05, 1.0))  # a random point of the projector's work
        if cycle % 2 == 0:
            projector.kill()
            kills += 1
            projector.start()
        else:
            private_pg.stop("immediate")
            pg_crashes += 1
            await asyncio.sleep(random.uniform(0.3, 1.0))  # hold the outage; writes go on
            private_pg.start()
        # Progress: the projector reaches the stream's head as of now (restart it, as a
        # supervisor would, if it gave up while PostgreSQL was down; fail-stop would be a bug).
        msgs = await stack.stream_msgs()
        head = msgs[-1].seq if msgs else 0

        waiting_since = time.monotonic()
        hang: str | None = None

        async def caught_up(head: int = head, since: float = waiting_since) -> bool:
            nonlocal exits, hang
            if not projector.running():
                exits += 1
                projector.start()
                return False
            if await stack.checkpoint() >= head:
                return True
            if time.monotonic() - since > 12:  # a heartbeat is 1 s: 10 s of silence is a hang
                hang = await stack.hung_projector()
            return hang is not None

        try:
            await wait_for(caught_up, timeout=60, interval=0.2, what=f"the projector to reach seq {head}")
        except AssertionError as exc:
            raise AssertionError(f"cycle {cycle}: {exc}\n{await stack.diagnose()}") from None
        if hang is not None:  # fail fast, with the diagnosis (a regression of test_known_bugs.py?)
            fault_report.set(projector_hang=f"cycle {cycle}: {hang}")
            diagnosis = await stack.diagnose()
            await load.abort()
            raise AssertionError(f"cycle {cycle}: the projector hangs: {hang}\n(cf. {PROJECTOR_HANG})\n"
                                 f"{diagnosis}")
    await load.stop()
    fault_report.set(projector_kills=kills, pg_crashes=pg_crashes, projector_exits_on_pg_loss=exits,
                     statuses=load.statuses())
    await load.verify(fault_report, projection_timeout=60, contiguous_observations=True,
                      reads_see_every_ack=True)
    status = (await pg_rows(stack.database_url))["status"]
    assert status is not None and status["state"] != "failed", f"a crash is not divergence: {status}"
