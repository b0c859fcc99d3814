"""kill -9 of the rollout controller mid-rollout: a standby takes over, no stage is promoted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from typing import Any

from ledger import Ledger, LedgerSettings, Replace
from ledger.fleet_events import FleetKind, verify_chain, verify_decisions
from ledger.fleet_log import FleetLog
from ops.embedded import REPO_ROOT
from tests.support.waiting import wait_for

from .helpers import fleet_client, start_rollout

SVC = "orders"


def _controller(settings: LedgerSettings, database_url: str, log_path: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NATS_URL": settings.nats_url, "DATABASE_URL": database_url,
           "LEDGER_STREAM": settings.stream, "LEDGER_SUBJECT_PREFIX": settings.subject_prefix,
           "ROLLOUT_TICK_MS": "100"}
    out = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "rollout", "run"], cwd=REPO_ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT)


async def test_kill_9_of_the_leader_mid_rollout(
    provisioned: LedgerSettings, ledger: Ledger, database_url: str, tmp_path: Any
) -> None:
    await ledger.append(SVC, Replace({"limit": 1}), actor="ops", reason="base")
    clients = [fleet_client(provisioned, SVC, f"i{n}", {"canary": str(n == 0).lower()}) for n in range(4)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for client in clients:
            await client.init_async()
        first = _controller(provisioned, database_url, tmp_path / "a.log")
        procs.append(first)
        await wait_for(lambda: b"leader" in (tmp_path / "a.log").read_bytes(), timeout=20, what="leader A")
        standby = _controller(provisioned, database_url, tmp_path / "b.log")
        procs.append(standby)
        log = FleetLog(ledger.nc, ledger.settings)
        await start_rollout(ledger, SVC, {"limit": 2},
                            [{"labels": {"canary": "true"}}, {"percent": 50}, {"percent": 100}],
                            {"bake_s": 1.0, "min_applied": 1.0})

        async def at_stage(n: int) -> bool:
            rollout = (await log.head(SVC)).state.rollout
            return rollout is not None and (rollout.stage >= n or rollout.state == "completed")

        await wait_for(lambda: at_stage(1), timeout=20, what="stage 1 promoted by A")
        first.send_signal(signal.SIGKILL)  # mid-rollout: stage 2 and completion are still to come
        first.wait(10)

        async def completed() -> bool:
            rollout = (await log.head(SVC)).state.rollout
            return rollout is not None and rollout.state == "completed"

        await wait_for(completed, timeout=30, what="the standby completes the rollout")
        assert b"leader" in (tmp_path / "b.log").read_bytes()
        history = await log.history(SVC)
        kinds = Counter(e.kind for e in history)
        assert kinds[FleetKind.STAGE_PROMOTED] == 2 and kinds[FleetKind.ROLLOUT_COMPLETED] == 1
        promoted_to = [e.state.rollout.stage for e in history if e.kind is FleetKind.STAGE_PROMOTED]
        assert promoted_to == [1, 2]
        assert verify_chain(history) == [] and verify_decisions(history) == []
        assert (await ledger.current(SVC)).version == 2  # the candidate written exactly once
        await wait_for(lambda: all(c.version == 2 and c.get_value("limit") == 2 for c in clients),
                       what="every instance on version 2")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for client in clients:
            await client.shutdown()
