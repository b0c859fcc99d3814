"""Scenario 6: a client cut off from NATS for 10 s (chaos proxy in blackhole mode).

Writes keep landing (through the ledger, straight to NATS) while the client's connection is
blackholed. The client must keep the config it has (not fall back to defaults, never go back),
converge within 3 s of the heal, and show every version in order (no missed version).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from ledger import Ledger, LedgerSettings, Replace
from tests.support.waiting import wait_for

from .chaos_proxy import ChaosProxy
from .conftest import SCALE, FaultReport, scaled
from .procs import ProcGroup
from .scenario import (
    Load,
    client_observations,
    client_version_at,
    convergence,
    markers_to_versions,
    wait_client_version,
)
from .stack import Stack
from .workload import LedgerWriter

SERVICE = "partitioned"
PARTITION_S = 10.0
CONVERGE_S = 3.0


@pytest.mark.timeout(90 + 40 * SCALE)
async def test_client_partitioned_from_nats_keeps_config_and_converges(
    stack: Stack, procs: ProcGroup, fault_report: FaultReport
) -> None:
    settings = LedgerSettings(nats_url=stack.nats.url, request_timeout=3)
    async with Ledger.connect(settings=settings) as led, ChaosProxy(stack.nats.port) as proxy:
        await led.append(SERVICE, Replace({"w": "seed", "n": 0}), actor="test", reason="seed")
        client = procs.client(SERVICE, proxy.nats_url(), safe_defaults={"w": "defaults"})
        await wait_client_version(client, SERVICE, stack, timeout=30, what="the client to start")
        load = Load(stack)
        writer = LedgerWriter(load.history, led, SERVICE, "lw")
        load.ledger_writer(writer, pace=0.15)
        await load.start()
        worst = 0.0
        for cycle in range(scaled(1)):
            await load.wait_acks(3, after=time.monotonic(), timeout=20, what="writes before the cut")
            await wait_client_version(client, SERVICE, stack, timeout=10, what="the client to be live")
            proxy.set_mode("blackhole")
            cut_at = time.monotonic()
            cut_version = client_version_at(client, SERVICE, markers_to_versions(await stack.stream_events()))
            await asyncio.sleep(PARTITION_S)  # hold the fault
            assert client.running(), client.log_tail()
            # During the cut it kept a stream config, never the defaults, never an older version.
            versions = markers_to_versions(await stack.stream_events())
            during = [ln for ln in client.snapshot() if ln["t"] >= cut_at and ln.get("event") == "tick"]
            assert during, "the client printed nothing while cut off (hung?)"
            for ln in during:
                assert ln.get("marker") not in (None, "defaults"), f"client lost its config: {ln}"
                assert versions.get((SERVICE, ln["marker"]), 0) >= (cut_version or 0), ln
            # ... and it really was cut off: no progress from 1 s after the cut until now.
            settled = {versions.get((SERVICE, ln["marker"])) for ln in during if ln["t"] >= cut_at + 1}
            assert len(settled) == 1, f"the client kept receiving versions through the blackhole: {settled}"
            last_cycle = cycle == scaled(1) - 1
            if last_cycle:
                await load.stop()  # the final version is then fixed before the heal
            events = await stack.stream_events()
            target = max(e.version or 0 for e in events if e.service == SERVICE)
            assert target > (cut_version or 0) + 5, "too few writes landed during the partition"
            proxy.set_mode("pass")
            healed_at = time.monotonic()
            versions = markers_to_versions(events)
            await wait_for(
                lambda v=versions, t=target: (client_version_at(client, SERVICE, v) or 0) >= t,  # type: ignore[misc]
                timeout=30, what=f"the client to reach version {target} after the heal",
            )
            took = convergence(client, SERVICE, target, healed_at, markers_to_versions(events))
            assert took is not None
            worst = max(worst, took)
            fault_report.max("max_convergence_s", took)
        events = await stack.stream_events()
        n = client_observations(load.history, client, SERVICE, events)
        fault_report.set(client_updates=n, partition_s=PARTITION_S, cycles=scaled(1))
        await load.verify(fault_report, projection=False, contiguous_observations=True, stream=events)
        assert worst <= CONVERGE_S, f"the client took {worst:.2f} s to converge after the heal"
