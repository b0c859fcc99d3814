"""Scenario 8: stream regression — NATS comes back with an empty store.

After some writes are projected, nats-server is stopped, its store replaced by an empty one, and
it is restarted (the stream re-provisioned, then a few new events appended: a *different*
history, shorter than the checkpoint). The projector must detect that the stream is behind its
checkpoint and fail-stop, instead of projecting the new history over the old one.
"""

from __future__ import annotations

import shutil

import pytest

from ledger import Ledger, LedgerSettings, Replace

from .conftest import FaultReport
from .scenario import Load
from .stack import Stack, pg_rows, projection_problems

SERVICE = "regressed"


@pytest.mark.timeout(120)
async def test_stream_behind_checkpoint_fail_stops_the_projector(
    stack: Stack, fault_report: FaultReport
) -> None:
    stack.start_projector()
    stack.start_api()
    await stack.wait_ready(timeout=60)
    load = Load(stack)
    (writer,) = await load.http_writers([SERVICE], per_service=1)
    for _ in range(6):
        assert (await writer.write_one()).status == 200
    before = await stack.wait_projection_idle()
    checkpoint = before[-1].seq
    await load.close()
    await load.verify(fault_report, projection=False)

    stack.nats.stop()
    shutil.move(str(stack.nats.store_dir), str(stack.nats.store_dir) + ".lost")
    stack.nats.start()
    await stack.provision()
    async with Ledger.connect(settings=LedgerSettings(nats_url=stack.nats.url)) as led:
        for n in range(2):  # a different, shorter history
            await led.append(SERVICE, Replace({"w": f"other-{n}"}), actor="t", reason="after regression")

    projector = stack.projector
    assert projector is not None
    await stack.wait_exit(projector, timeout=30,
                          what="the projector to fail-stop on a stream behind its checkpoint")
    assert projector.returncode not in (0, None), projector.returncode
    rows = await pg_rows(stack.database_url)
    assert rows["status"]["state"] == "failed", rows["status"]
    assert rows["checkpoint"] == checkpoint, "the checkpoint moved"
    assert await projection_problems(stack.database_url, before) == [], "PostgreSQL changed"
    status, body = await stack.readyz()
    assert status == 503, body

    projector.start()  # still refuses
    await stack.wait_exit(projector, timeout=30, what="the restarted projector to refuse")
    assert projector.returncode not in (0, None)
    assert await projection_problems(stack.database_url, before) == []
    fault_report.set(checkpoint=checkpoint, stream_last_after=2, projector_exit=projector.returncode,
                     reason=(rows["status"]["reason"] or "")[:160])
