"""Scenario 2: lost acknowledgements between the API and NATS, idempotent retries.

The API talks to NATS through the chaos proxy. In ``drop_replies`` mode every publish reaches
the server and is stored, but its ack (and every other reply) is lost: the API cannot know and
must answer "unknown" (5xx), never "failed". Writers retry with the same Idempotency-Key after
the heal; each write must take effect exactly once, with the version of its first landing.
Each cycle then also slows the link down (300 ms each way) and resets every connection.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .chaos_proxy import ChaosProxy
from .conftest import SCALE, FaultReport, scaled
from .scenario import Load, retry_stats
from .stack import Stack

SERVICES = ["lossy-a", "lossy-b"]
API_ENV = {"LEDGER_REQUEST_TIMEOUT": "1", "API_WRITE_WAIT_MS": "1000"}
HOLD_S = 3.5


@pytest.mark.timeout(150 + 60 * SCALE)
async def test_lost_acks_with_idempotent_retries_take_effect_once(
    stack: Stack, fault_report: FaultReport
) -> None:
    async with ChaosProxy(stack.nats.port) as proxy:
        stack.start_projector()
        stack.start_api(nats_url=proxy.nats_url(), env=API_ENV)
        await stack.wait_ready(timeout=60)
        load = Load(stack)
        # The client gives up on a request after 2 s (unknown) and retries with the same key; the
        # API's own budget is 3 publish attempts of 1 s each (LEDGER_REQUEST_TIMEOUT).
        await load.http_writers(SERVICES, per_service=min(2 * SCALE, 8), pace=0.01, timeout=2,
                                give_up_after=60, max_retry_pause=0.2)
        await load.http_readers(SERVICES, pace=0.1)
        await load.start()
        recoveries = []
        resets = 0
        for _ in range(scaled(3)):
            await load.wait_acks(3, after=time.monotonic(), timeout=30, what="writes before the fault")
            proxy.set_mode("drop_replies")
            # Hold the fault longer than the API's internal retries (3 x 1 s), so that both the
            # API's retry (same msg-id) and the client's retry (same Idempotency-Key) are needed.
            await asyncio.sleep(HOLD_S)
            proxy.set_mode("pass")
            healed = time.monotonic()
            first = await load.wait_acks(1, after=healed, timeout=30, what="writes after the heal")
            recoveries.append(first - healed)
            # A slow link (each chunk held 300 ms each way), then connections reset mid-flight.
            proxy.set_mode("delay", delay_ms=300)
            await asyncio.sleep(1.0)  # hold the fault
            resets += proxy.connections
            proxy.set_mode("reset")
            await asyncio.sleep(0.2)  # hold the fault: reconnects are refused for a moment
            proxy.set_mode("pass")
            await load.wait_acks(1, after=time.monotonic(), timeout=30, what="writes after the resets")
        await load.stop()
    assert proxy.dropped_down > 0, "the proxy dropped no reply: the scenario did not run"
    retried, recognised = retry_stats(load.history)
    fault_report.set(statuses=load.statuses(), retried_after_unknown_and_acked=retried,
                     retries_answered_as_duplicate=recognised, dropped_reply_bytes=proxy.dropped_down,
                     connections_reset=resets)
    fault_report.max("max_write_recovery_s", max(recoveries))
    await load.verify(fault_report, reads_see_every_ack=True)
    assert recognised > 0, (
        "no retry was answered as the earlier landing of its write: lost acks were not exercised")
