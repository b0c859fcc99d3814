"""Scenario 3: kill -9 the API in the middle of requests; clients retry with Idempotency-Key.

Writers keep posting while the API process is SIGKILLed at random points and restarted on the
same port. Requests cut by the kill are unknown; their retries (same key) must not append twice.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from .conftest import SCALE, FaultReport, scaled
from .scenario import Load, in_flight_at, retry_stats
from .stack import Stack

SERVICES = ["api-a", "api-b"]


@pytest.mark.timeout(150 + 90 * SCALE)
async def test_kill9_api_mid_request_retries_take_effect_once(stack: Stack, fault_report: FaultReport) -> None:
    stack.start_projector()
    stack.start_api(env={"API_WRITE_WAIT_MS": "2000"})
    await stack.wait_ready(timeout=60)
    load = Load(stack)
    await load.http_writers(SERVICES, per_service=min(3 * SCALE, 10), pace=0.0, timeout=6,
                            give_up_after=60)
    await load.http_readers(SERVICES, pace=0.05)
    await load.sse_watchers(SERVICES)  # resume with Last-Event-ID on the restarted API
    await load.start()
    restarts, kills = [], []
    for _ in range(scaled(10)):
        await load.wait_acks(5, after=time.monotonic(), timeout=30, what="writes before the kill")
        await asyncio.sleep(random.uniform(0.0, 0.4))  # a random point in the request stream
        assert stack.api is not None
        kills.append(time.monotonic())
        stack.api.kill()
        stack.api.start()
        restarted = time.monotonic()
        first = await load.wait_acks(1, after=restarted, timeout=60, what="the restarted API to accept writes")
        restarts.append(first - restarted)
    await load.stop()
    cut = in_flight_at(load.history, kills)
    retried, recognised = retry_stats(load.history)
    fault_report.set(statuses=load.statuses(), api_restarts=len(restarts), attempts_cut_by_kill=cut,
                     retried_after_unknown_and_acked=retried, retries_answered_as_duplicate=recognised,
                     max_api_restart_to_first_ack_s=round(max(restarts), 3))
    await load.verify(fault_report, contiguous_observations=True)
    assert cut > 0, "no request was in flight when the API was killed: the scenario did not bite"
