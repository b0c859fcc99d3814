"""Fleet: time from ``promote`` to 100 % applied (acknowledged) for N client instances, beside a
same-run baseline (a plain write reaching the same N instances); ack traffic per instance per hour;
controller failover (``bench.bench_fleet_failover``: kill -9 of the leader -> the standby's first
decision, beside the lock poll interval and a live leader's decision latency).

    .venv/bin/python -m bench fleet          (N = BENCH_FLEET_N, default 50;
                                              BENCH_FLEET_FAILOVERS rounds, default 3)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import nats

from client import ConfigClient
from ledger import Ledger, LedgerSettings, Replace, fleet_steps
from ledger.acks import live
from ledger.fleet_events import FleetKind
from ledger.fleet_log import FleetLog, candidate_of
from ledger.rollout import ChangeSpec, GateSpec, StageSpec
from ledger.streams import StreamsFile, apply_streams, load_streams_file
from ops.embedded import REPO_ROOT, NatsServer

SVC = "bench-fleet"
HEARTBEAT_S = 10.0


async def _all_acked(log: FleetLog, n: int, version: int, rollout: str | None, deadline: float = 60) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < deadline:
        acks = live(await log.acks(SVC), datetime.now(UTC), 60)
        if sum(a.status == "applied" and a.version == version and a.rollout == rollout for a in acks) >= n:
            return time.perf_counter() - start
        await asyncio.sleep(0.005)
    raise TimeoutError("not every instance acknowledged")


async def main() -> None:
    await _promote_bench()
    from .bench_fleet_failover import failover_bench

    await failover_bench(int(os.environ.get("BENCH_FLEET_FAILOVERS", "3")))


async def _promote_bench() -> None:
    n = int(os.environ.get("BENCH_FLEET_N", "50"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    server = NatsServer(tmp / "nats").start()
    clients: list[ConfigClient] = []
    try:
        settings = LedgerSettings(nats_url=server.url)
        shipped = load_streams_file(REPO_ROOT / "streams.yaml")
        nc = await nats.connect(server.url)
        await apply_streams(nc.jetstream(), StreamsFile(streams=shipped.streams))
        await nc.close()
        async with Ledger.connect(settings=settings) as led:
            log = FleetLog(led.nc, settings)
            await led.append(SVC, Replace({"limit": 1}), actor="bench")
            for i in range(n):
                client = ConfigClient(SVC, nats_url=server.url, enable_nats_updates=True, environ={}, lkg_path=False,
                                      instance_id=f"i{i}", labels={"canary": str(i < 2).lower()},
                                      heartbeat_s=HEARTBEAT_S)
                await client.init_async()
                clients.append(client)
            await _all_acked(log, n, 1, None)
            # baseline: a plain write reaching every instance (applied + acknowledged)
            t0 = time.perf_counter()
            await led.append(SVC, Replace({"limit": 2}), actor="bench")
            await _all_acked(log, n, 2, None)
            baseline = time.perf_counter() - t0
            # rollout: canary stage, then promote to 100 %
            head = await log.head(SVC)
            change = ChangeSpec(op="patch", patch={"limit": 3})
            base, candidate = await candidate_of(led, SVC, change.to_change())
            state = fleet_steps.start(head.state, rollout_id="bench", change=change,
                                      stages=[StageSpec(labels={"canary": "true"}), StageSpec(percent=100)],
                                      gate=GateSpec(bake_s=3600), base_version=base, candidate=candidate,
                                      now=datetime.now(UTC), actor="bench", reason="bench")
            await log.append(head, SVC, FleetKind.ROLLOUT_STARTED, "bench", state, actor="bench")
            await _all_acked(log, 2, 3, "bench")
            head = await log.head(SVC)
            t0 = time.perf_counter()
            await log.append(head, SVC, FleetKind.STAGE_PROMOTED, "bench",
                             fleet_steps.promote(head.state, "bench", datetime.now(UTC)), actor="bench")
            await _all_acked(log, n, 3, "bench")
            promote = time.perf_counter() - t0
            acks = await log.acks(SVC)
            size = max(len(a.model_dump_json()) for a in acks)
            subject = len(settings.ack_subject(SVC, "i0"))
            per_hour = 3600 / HEARTBEAT_S
        print(f"   {n} instances: plain write -> 100% acknowledged: {baseline * 1000:.0f} ms (baseline)")
        print(f"   {n} instances: promote -> 100% acknowledged:     {promote * 1000:.0f} ms")
        print(f"   ack: {size} B body + {subject} B subject, heartbeat every {HEARTBEAT_S:g} s -> "
              f"{per_hour:.0f} msgs and ~{per_hour * (size + subject + 60) / 1024:.0f} KiB per instance per hour "
              "(+ one per change; 60 B publish framing estimate)")
    finally:
        for client in clients:
            await client.shutdown()
        server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
