"""Scenario 10: pressure — a request flood, 500 SSE watchers, a full JetStream store.

- Flood: hundreds of concurrent writes (several writers per service, so CAS contention) and reads
  at once. No 500; every answer is an ack, a definite refusal, or a 503 with Retry-After.
- 500 SSE watchers on one service: every watcher gets every version, in order, without a gap.
- Store full: nats-server with a 2 MB ``max_file_store`` (the ledger refuses stream byte limits,
  so the account limit is what fills). Writes are refused with 503 + Retry-After (or a 4xx),
  reads keep working, no acknowledged write is lost; after NATS restarts on the same store with
  the shipped (large) limit, the *same* API and projector accept writes again.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from ops.embedded import SHIPPED_NATS_CONF, NatsServer
from tests.support.waiting import wait_for

from .conftest import SCALE, FaultReport, scaled
from .procs import ProcGroup
from .scenario import Load
from .stack import Stack
from .workload import HttpWriter

RECOVERY_TARGET_S = 5.0


@pytest.mark.timeout(120 + 60 * SCALE)
async def test_request_flood(stack: Stack, fault_report: FaultReport) -> None:
    stack.start_projector()
    stack.start_api(env={"API_WRITE_WAIT_MS": "3000"})
    await stack.wait_ready(timeout=60)
    load = Load(stack)
    services = [f"flood-{i}" for i in range(20)]
    blind = await load.http_writers(services, per_service=6, timeout=30, give_up_after=60, prefix="b")
    # Compare-and-set writers: read the version, then write with If-Match (many get 409).
    cas = await load.http_writers(services, per_service=4, timeout=30, give_up_after=60, prefix="c")
    await load.http_readers(services * 10)

    async def cas_write(w: HttpWriter) -> None:
        reader = next(r for r in load.readers if r.service == w.service)
        op = await reader.read()
        await w.write_one(if_match=op.version if op.outcome == "ok" else None)

    t0 = time.monotonic()
    for _ in range(scaled(3)):  # waves of simultaneous requests
        await asyncio.gather(*(w.write_one() for w in blind), *(cas_write(w) for w in cas),
                             *(r.read() for r in load.readers))
    took = time.monotonic() - t0
    await load.close()
    statuses = load.statuses()
    reads = sum(1 for op in load.history.ops if op.kind == "read")
    fault_report.set(statuses=statuses, requests=sum(statuses.values()) + reads, flood_s=round(took, 2),
                     concurrency=len(blind) + 2 * len(cas) + len(load.readers))
    result = await load.verify(fault_report, reads_see_every_ack=True)
    assert not any(code.startswith("5") and code != "503" for code in statuses), statuses
    assert statuses.get("409", 0) > 0 and result.totals()["failed"] > 0, "no If-Match conflict happened"
    reads_failed = [op for op in load.history.ops if op.kind == "read" and op.outcome != "ok"]
    assert not reads_failed, f"{len(reads_failed)} reads failed under the flood: {reads_failed[:3]}"


async def _watch(session: aiohttp.ClientSession, url: str, seen: list[tuple[int, float]],
                 errors: list[str]) -> None:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
            if resp.status != 200:
                errors.append(f"HTTP {resp.status}")
                return
            current: int | None = None
            async for raw in resp.content:
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"id:"):
                    current = int(line[3:].strip())
                elif not line and current is not None:
                    seen.append((current, time.monotonic()))
                    current = None
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(f"{type(exc).__name__}: {exc}")


@pytest.mark.timeout(150 + 60 * SCALE)
async def test_500_sse_watchers_get_every_version(stack: Stack, fault_report: FaultReport) -> None:
    service = "watched"
    stack.start_projector()
    stack.start_api(env={"API_SSE_HEARTBEAT_S": "5"})
    await stack.wait_ready(timeout=60)
    load = Load(stack)
    (writer,) = await load.http_writers([service], per_service=1, timeout=10)
    assert (await writer.write_one()).status == 200
    url = f"{stack.base_url}/api/v1/config/{service}/watch"
    n_watchers = 500
    seen: list[list[tuple[int, float]]] = [[] for _ in range(n_watchers)]
    errors: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [asyncio.create_task(_watch(session, url, seen[i], errors)) for i in range(n_watchers)]
        try:
            await wait_for(lambda: errors or all(seen), timeout=60, what="500 watchers to get the current config")
            assert not errors, errors[:5]
            writes = scaled(5)
            acked: dict[int, float] = {}
            for _ in range(writes):
                result = await writer.write_one()
                assert result.outcome == "ok" and result.version is not None, result
                acked[result.version] = time.monotonic()
                await asyncio.sleep(0.2)  # pace the changes
            final = max(acked)
            await wait_for(lambda: errors or all(s and s[-1][0] >= final for s in seen), timeout=60,
                           what=f"every watcher to reach version {final}")
            assert not errors, errors[:5]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await load.close()
    worst = 0.0
    for i, s in enumerate(seen):
        ids = [v for v, _ in s]
        assert ids == list(range(ids[0], final + 1)), f"watcher {i} saw {ids}"
        for v, t in s:
            if v in acked:
                worst = max(worst, t - acked[v])
    fault_report.set(sse_watchers=n_watchers, versions=len(acked))
    fault_report.max("max_convergence_s", worst)
    await load.verify(fault_report)


@pytest.mark.timeout(150 + 60 * SCALE)
async def test_store_full_refuses_writes_then_recovers_without_restarts(
    procs: ProcGroup, database_url: str, tmp_path: Path, fault_report: FaultReport
) -> None:
    small_conf = tmp_path / "nats-small.conf"
    shipped = SHIPPED_NATS_CONF.read_text()
    assert "max_file_store: 10G" in shipped
    small_conf.write_text(shipped.replace("max_file_store: 10G", "max_file_store: 2MB"))
    store = tmp_path / "nats-store"
    small = NatsServer(store, config=small_conf).start()
    big: NatsServer | None = None
    try:
        stack = Stack(procs=procs, nats=small, database_url=database_url, work_dir=tmp_path)
        await stack.provision()
        stack.start_projector()
        stack.start_api(env={"API_WRITE_WAIT_MS": "300", "LEDGER_REQUEST_TIMEOUT": "2"})
        await stack.wait_ready(timeout=60)
        load = Load(stack)
        (writer,) = await load.http_writers(["bulky"], per_service=1, payload_bytes=60_000,
                                            timeout=10, give_up_after=0)
        refusals = []
        for _ in range(200):
            result = await writer.write_one()
            if result.outcome != "ok":
                refusals.append(result)
                if len(refusals) >= 3:
                    break
        assert refusals, "the store never filled up"
        for r in refusals:
            assert r.status is not None and (r.status == 503 or 400 <= r.status < 500), r
            if r.status == 503:
                assert r.retry_after is not None, f"503 without Retry-After: {r}"
        acked_before = writer.stats.acked
        assert acked_before > 5
        # Reads keep working while writes are refused.
        await load.http_readers(["bulky"])
        op = await load.readers[0].read()
        assert op.outcome == "ok" and op.version == acked_before, op

        # Restart NATS on the same store with the shipped limit; API and projector stay up.
        small.stop()
        big = NatsServer(store, port=small.port, monitor_port=small.monitor_port).start()
        restarted = time.monotonic()
        stack.nats = big
        writer.give_up_after = 30  # from now on, retry while the outcome is unknown
        result = await writer.write_one()
        recovery = time.monotonic() - restarted
        assert result.outcome == "ok", result
        for _ in range(3):
            assert (await writer.write_one()).outcome == "ok"
        assert stack.api is not None and stack.api.starts == 1 and stack.api.running()
        assert stack.projector is not None and stack.projector.starts == 1 and stack.projector.running()
        fault_report.set(refusal_statuses=sorted({r.status for r in refusals}), acked_before_full=acked_before)
        fault_report.max("max_write_recovery_s", recovery)
        await load.close()
        await load.verify(fault_report)
        assert recovery <= RECOVERY_TARGET_S, recovery
    finally:
        procs.kill_all()  # the API and projector first, then their NATS
        small.kill()
        if big is not None:
            big.kill()
