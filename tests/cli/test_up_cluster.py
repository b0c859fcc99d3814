"""`config-ledger up --cluster 3`: the embedded stack on a local 3-node NATS cluster, the stream at
3 replicas; kill -9 the stream leader and a write still succeeds (it waits out the election);
Ctrl-C stops every node."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import nats
import pytest

from ops.embedded import free_port

from .conftest import clean_env, start_up
from .proctree import descendants, survivors


@pytest.fixture
def workspace() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ledger-up-cluster-"))
    path.chmod(0o755)  # as root PostgreSQL runs as `postgres` and must reach its data
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_cluster_needs_three_nodes(workspace: Path) -> None:
    env = clean_env(API_PORT=str(free_port()), LEDGER_DATA_DIR=str(workspace / "data"))
    up = start_up(env, workspace / "up.log", "--cluster", "2")
    assert up.proc.wait(60) == 2, up.output()
    assert "at least 3 nodes" in up.output()


async def test_up_cluster_survives_the_loss_of_the_stream_leader(workspace: Path) -> None:
    api_port = free_port()
    env = clean_env(API_PORT=str(api_port), LEDGER_PG_PORT=str(free_port()),
                    LEDGER_DATA_DIR=str(workspace / "data"))
    up = start_up(env, workspace / "up.log", "--cluster", "3", "--no-seed")
    try:
        await up.wait_ready()
        out = up.output()
        pids = {m.group(1): int(m.group(2)) for m in re.finditer(r"NATS (nats-\d)\s+\S+\s+\(pid (\d+)", out)}
        assert set(pids) == {"nats-1", "nats-2", "nats-3"}, out
        url = re.search(r"export NATS_URL=(\S+)", out)
        assert url and url.group(1).count(",") == 2, out
        nc = await nats.connect(url.group(1).split(","))
        try:
            info = await nc.jetstream().stream_info("CONFIG_LEDGER")
        finally:
            await nc.close()
        assert info.config.num_replicas == 3 and info.cluster is not None
        leader = info.cluster.leader
        assert leader in pids

        os.kill(pids[leader], signal.SIGKILL)
        async with aiohttp.ClientSession() as session, session.post(
            f"{up.api_url}/api/v1/config/after-the-kill", json={"a": 1},
            headers={"X-Change-Reason": "leader killed", "Idempotency-Key": "k1"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            body = await resp.json()
            assert resp.status in (200, 202), body  # latency (the election), not an error
            assert body["version"] == 1

        tree = descendants(up.proc.pid)
        assert up.interrupt() == 0, up.output()[-3000:]
        assert not survivors(tree), up.output()[-2000:]
    finally:
        if up.proc.poll() is None:
            up.interrupt()
