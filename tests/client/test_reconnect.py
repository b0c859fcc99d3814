"""NATS restarted under a hot-reloading client: no version missed, converged within 3 s."""

from __future__ import annotations

import asyncio
import time

import pytest

from ledger import Ledger, Replace, StoreTimeout, Unavailable
from ops.embedded import NatsServer
from tests.support.waiting import wait_for

from .conftest import MakeClient


async def append_when_back(ledger: Ledger, n: int) -> None:
    """Append version ``n``, retrying while the ledger's own connection comes back."""

    async def attempt() -> bool:
        try:
            await ledger.append("svc", Replace({"n": n}), actor="ops", idempotency_key=f"n{n}")
        except (Unavailable, StoreTimeout):
            return False
        return True

    await wait_for(attempt, timeout=10, interval=0.05, what=f"append of version {n}")


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_nats_restart_mid_stream_misses_nothing(
    nats_server: NatsServer, ledger: Ledger, stream_client: MakeClient, how: str
) -> None:
    for n in range(1, 4):
        await ledger.append("svc", Replace({"n": n}), actor="ops")
    client = stream_client("svc")
    await client.init_async()
    seen: list[int] = []
    client.on_config_update(lambda config: seen.append(config["n"]))
    # Appended and acknowledged, then the server goes away at once: some of these may not have
    # reached the client yet.
    for n in range(4, 7):
        await ledger.append("svc", Replace({"n": n}), actor="ops")
    nats_server.stop() if how == "stop" else nats_server.kill()
    await wait_for(lambda: not ledger.nc.is_connected, timeout=5, what="the writer to notice")
    assert (await client.get_config())["n"] in range(3, 7)  # still served while NATS is down
    nats_server.start()
    back = time.monotonic()
    await wait_for(lambda: ledger.nc.is_connected, timeout=3, what="the writer to reconnect")
    for n in range(7, 12):
        await append_when_back(ledger, n)
    await wait_for(lambda: client.version == 11, timeout=3, what="convergence after the restart")
    assert time.monotonic() - back < 3.0
    await wait_for(lambda: len(seen) >= 8, timeout=3, what="callbacks")
    assert seen == list(range(4, 12))
    assert client.source == "stream"
    watcher = client._sources.watcher
    assert watcher is not None and watcher.subscriptions >= 2  # re-subscribed after last_seq


async def test_a_client_started_while_nats_was_down_switches_to_the_stream(
    nats_server: NatsServer, ledger: Ledger, stream_client: MakeClient
) -> None:
    await ledger.append("svc", Replace({"n": 1}), actor="ops")
    nats_server.stop()
    client = stream_client("svc", safe_defaults={"n": 0})
    started = time.monotonic()
    assert await client.get_config() == {"n": 0}
    assert time.monotonic() - started < 1.0 and client.source == "defaults"
    seen: list[int] = []
    client.on_config_update(lambda config: seen.append(config["n"]))
    nats_server.start()
    await append_when_back(ledger, 2)
    await wait_for(lambda: client.source == "stream" and client.version == 2, timeout=10, what="the stream")
    await ledger.append("svc", Replace({"n": 3}), actor="ops")
    await wait_for(lambda: seen and seen[-1] == 3, timeout=5, what="hot reload once connected")
    assert seen in ([1, 2, 3], [2, 3])  # 1 too when the client connected before the writer


async def test_a_client_shut_down_right_after_init_always_stops(ledger: Ledger, stream_client: MakeClient) -> None:
    """Shutdown cancels the watchers while their consumers are being created: on Python 3.11
    nats-py's request (``asyncio.wait_for``) can swallow that cancellation, and a watcher that
    then waited again never stopped (about one shutdown in five hung here before the fix)."""
    await ledger.append("svc", Replace({"n": 1}), actor="ops")
    for attempt in range(60):
        client = stream_client("svc")
        await client.init_async()
        stopping = asyncio.ensure_future(client.shutdown())
        done, _ = await asyncio.wait({stopping}, timeout=10)  # a hang, not a speed limit
        assert done, f"shutdown {attempt} never finished"
        stopping.result()
