"""Controller failover: ``kill -9`` of the leading ``python -m rollout run`` -> the standby's first
decision, beside the lock poll interval (``ROLLOUT_LOCK_POLL_MS``) and a same-run baseline: the
live leader's decision latency (a gate-satisfying ack published -> the decision stored).

Each round starts a rollout whose canary gate waits for one acknowledgement, kills the leader
(SIGKILL: no clean shutdown, the PostgreSQL session dies with the process), then publishes that
acknowledgement: the only controller that can decide is the standby, once it holds the lock. The
time is the decision event's ``occurred_at`` (the standby's clock) minus the kill instant.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import nats

from ledger import Ledger, LedgerSettings, Replace, fleet_steps
from ledger.acks import Ack
from ledger.fleet_events import FleetKind
from ledger.fleet_log import FleetLog, candidate_of
from ledger.rollout import ChangeSpec, GateSpec, StageSpec
from ledger.streams import StreamsFile, apply_streams, load_streams_file
from ops.embedded import REPO_ROOT, NatsServer, PostgresServer

from .common import line, summary_ms, write_results

SVC = "bench-failover"
LOCK_POLL_MS = 200
CANARY = {"canary": "true"}


class _Controllers:
    """``python -m rollout run`` processes on one NATS and one PostgreSQL."""

    def __init__(self, settings: LedgerSettings, database_url: str, logs: Path) -> None:
        self.env = {**os.environ, "NATS_URL": settings.nats_url, "DATABASE_URL": database_url,
                    "LEDGER_STREAM": settings.stream, "LEDGER_SUBJECT_PREFIX": settings.subject_prefix,
                    "ROLLOUT_LOCK_POLL_MS": str(LOCK_POLL_MS), "LOG_LEVEL": "WARNING"}
        self.logs = logs
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.logs / f"controller-{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "rollout", "run"], cwd=REPO_ROOT, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc, log

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def _until(probe, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _sessions(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'config-ledger-rollout'"))
    finally:
        await conn.close()


async def _ack(log: FleetLog, rollout: str | None) -> None:
    await log.publish_ack(Ack(service=SVC, instance="c1", labels=CANARY, version=1, rollout=rollout,
                              status="applied", staged=True, at=datetime.now(UTC)))


async def _start_rollout(led: Ledger, log: FleetLog, rollout_id: str) -> None:
    head = await log.head(SVC)
    change = ChangeSpec(op="patch", patch={"round": rollout_id})
    base, candidate = await candidate_of(led, SVC, change.to_change())
    state = fleet_steps.start(head.state, rollout_id=rollout_id, change=change,
                              stages=[StageSpec(labels=CANARY), StageSpec(percent=100)],
                              gate=GateSpec(bake_s=0, min_applied=1.0), base_version=base, candidate=candidate,
                              now=datetime.now(UTC), actor="bench", reason="bench")
    await log.append(head, SVC, FleetKind.ROLLOUT_STARTED, rollout_id, state, actor="bench")


async def _decided_at(log: FleetLog, rollout_id: str) -> datetime:
    """When the first controller decision on ``rollout_id`` was taken (its event's occurred_at)."""
    found: list[datetime] = []

    async def promoted() -> bool:
        for event in reversed(await log.history(SVC)):
            if event.ref == rollout_id and event.kind is FleetKind.STAGE_PROMOTED:
                found.append(event.occurred_at)
                return True
        return False

    await _until(promoted, f"a decision on {rollout_id}")
    return found[0]


async def _completed(log: FleetLog, rollout_id: str) -> None:
    async def done() -> bool:
        rollout = (await log.head(SVC)).state.rollout
        return rollout is not None and rollout.id == rollout_id and not rollout.active

    await _until(done, f"{rollout_id} to finish")


async def failover_bench(rounds: int) -> None:
    tmp = _work_dir()
    server = NatsServer(tmp / "nats").start()
    pg = PostgresServer(tmp / "pg").start()
    settings = LedgerSettings(nats_url=server.url)
    controllers = _Controllers(settings, pg.url(), tmp)
    failovers: list[float] = []
    steady: list[float] = []
    try:
        nc = await nats.connect(server.url)
        await apply_streams(nc.jetstream(), StreamsFile(streams=load_streams_file(REPO_ROOT / "streams.yaml").streams))
        await nc.close()
        async with Ledger.connect(settings=settings) as led:
            log = FleetLog(led.nc, settings)
            await led.append(SVC, Replace({"round": "base"}), actor="bench")
            leader, leader_log = controllers.start()
            await _until(lambda: _has(leader_log, b"leader"), "the first leader", 60)
            for r in range(rounds):
                # baseline: the live leader decides on a gate-satisfying ack
                rid = f"steady{r}"
                await _ack(log, None)
                await _start_rollout(led, log, rid)
                t0 = datetime.now(UTC)
                await _ack(log, rid)
                steady.append((await _decided_at(log, rid) - t0).total_seconds())
                await _completed(log, rid)
                # failover: a standby polling the lock, the leader killed, then the ack
                standby, standby_log = controllers.start()
                await _until(lambda: _two_sessions(pg.url()), "the standby's lock session", 60)
                rid = f"failover{r}"
                await _ack(log, None)
                await _start_rollout(led, log, rid)
                killed_at = datetime.now(UTC)
                leader.send_signal(signal.SIGKILL)
                leader.wait()
                await _ack(log, rid)
                failovers.append((await _decided_at(log, rid) - killed_at).total_seconds())
                await _completed(log, rid)
                leader, leader_log = standby, standby_log
    finally:
        controllers.stop_all()
        pg.stop("immediate")
        server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    fo, st = summary_ms(failovers), summary_ms(steady)
    print("   " + line("failover: kill -9 -> first decision", fo["p50_ms"], "ms p50", "lock poll interval",
                       LOCK_POLL_MS))
    print("   " + line("failover: kill -9 -> first decision", fo["p99_ms"], "ms max", "live leader: ack -> decision",
                       st["p50_ms"]))
    print(f"   ({rounds} rounds: failover {[round(f * 1000) for f in failovers]} ms, "
          f"live leader {[round(s * 1000) for s in steady]} ms)")
    write_results("fleet_failover", {"rounds": rounds, "lock_poll_ms": LOCK_POLL_MS, "failover": fo,
                                     "live_decision": st})


def _work_dir() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    tmp.chmod(0o755)  # PostgreSQL may run as another user
    return tmp


def _contains(path: Path, needle: bytes) -> bool:
    return path.exists() and needle in path.read_bytes()


async def _has(path: Path, needle: bytes) -> bool:
    return await asyncio.to_thread(_contains, path, needle)


async def _two_sessions(database_url: str) -> bool:
    return await _sessions(database_url) >= 2
