"""Scenario 5: SIGSTOP / SIGCONT of nats-server, the projector and a client.

A frozen process holds its sockets open but answers nothing (GC pause, VM stall, swapped out).
Writes through the API go on; after each SIGCONT the system must recover by itself: the API
accepts writes again, the projector catches up, the client converges and shows every version,
in order, without going back.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.waiting import wait_for

from .conftest import SCALE, FaultReport, scaled
from .procs import ProcGroup
from .scenario import (
    Load,
    client_observations,
    convergence,
    markers_to_versions,
    wait_client_version,
)
from .stack import Stack

SERVICE = "frozen"
API_ENV = {"LEDGER_REQUEST_TIMEOUT": "2", "API_WRITE_WAIT_MS": "1000"}
HOLD_S = 3.0


@pytest.mark.timeout(150 + 90 * SCALE)
async def test_sigstop_sigcont_nats_projector_client(
    stack: Stack, procs: ProcGroup, fault_report: FaultReport
) -> None:
    stack.start_projector()
    stack.start_api(env=API_ENV)
    await stack.wait_ready(timeout=60)
    load = Load(stack)
    await load.http_writers([SERVICE, "frozen-other"], per_service=min(2 * SCALE, 6), pace=0.05,
                            timeout=6, give_up_after=60)
    await load.http_readers([SERVICE], pace=0.1)
    await load.start()
    await load.wait_acks(2, timeout=30, what="the first writes")
    client = procs.client(SERVICE, stack.nats.url, name="client")
    await wait_client_version(client, SERVICE, stack, timeout=30, what="the client to start")
    projector = stack.projector
    assert projector is not None
    targets = {"nats": stack.nats, "projector": projector, "client": client}
    recovery: dict[str, float] = {}
    for _ in range(scaled(1)):
        for name, target in targets.items():
            await load.wait_acks(3, after=time.monotonic(), timeout=30, what=f"writes before freezing {name}")
            target.pause()
            await asyncio.sleep(HOLD_S)  # hold the fault
            target.resume()
            resumed = time.monotonic()
            if name == "nats":
                first = await load.wait_acks(1, after=resumed, timeout=30,
                                             what="the API to accept writes after SIGCONT of NATS")
                took = first - resumed
                fault_report.max("max_write_recovery_s", took)
            elif name == "projector":
                msgs = await stack.stream_msgs()
                head = msgs[-1].seq
                await wait_for(lambda h=head: _at_least(stack, h), timeout=30,  # type: ignore[misc]
                               what="the projector to catch up after SIGCONT")
                took = time.monotonic() - resumed
            else:
                events = await stack.stream_events()
                head_version = max(e.version or 0 for e in events if e.service == SERVICE)
                await wait_client_version(client, SERVICE, stack, timeout=30,
                                          what="the client to catch up after SIGCONT")
                took = convergence(client, SERVICE, head_version, resumed, markers_to_versions(events)) or 0.0
                fault_report.max("max_convergence_s", took)
            recovery[name] = round(max(recovery.get(name, 0.0), took), 3)
    await load.stop()
    final = await wait_client_version(client, SERVICE, stack, timeout=30, what="the client to converge")
    events = await stack.stream_events()
    last_ack = max(op.complete or 0.0 for op in load.history.writes(SERVICE) if op.outcome == "ok")
    fault_report.set(final_version_lag_s=convergence(client, SERVICE, final, last_ack,
                                                     markers_to_versions(events)))
    n = client_observations(load.history, client, SERVICE, events)
    fault_report.set(recovery_after_sigcont_s=recovery, client_updates=n, statuses=load.statuses())
    await load.verify(fault_report, contiguous_observations=True, reads_see_every_ack=True)


async def _at_least(stack: Stack, seq: int) -> bool:
    return await stack.checkpoint() >= seq
