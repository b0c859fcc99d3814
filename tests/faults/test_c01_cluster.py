"""Cluster scenarios: a 3-node NATS cluster, the stream at 3 replicas, the projector, the API and a
``ConfigClient`` given every node's URL (what ``compose.yaml``'s cluster profile runs).

1. ``no_fault`` — concurrent writers through the API, conditional (If-Match) and not, on shared
   services: every answer is 2xx or, for a conditional write that lost a race, 409 (JetStream
   says 10164 on a replicated stream, 10071 on one node: both are a version conflict).
2. ``leader_kill`` — kill -9 the stream leader under HTTP load: writes wait through the election
   (same Nats-Msg-Id, same expected sequence) instead of failing; then the node restarts and
   rejoins with the same stream.
3. ``consumer_node_kill`` — kill -9 a follower that holds the projector's or the client's
   consumer: they re-create it on a live node and converge; the node restarts and rejoins.

Each checks: every acknowledged write on the stream exactly once, nothing refused on it, no
non-2xx for keyed writes, the stream identical on every node, PostgreSQL equal to the stream and
the client's versions gap-free up to the last one. Figures go to the fault report
(``bench/results/faults.json``): election time, longest write stall, consumer recovery.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import nats
import pytest

from ops.nats_cluster import NatsCluster, consumer_hosts, stream_leader, wait_stream_leader
from tests.support.waiting import wait_for

from .conftest import SCALE, FaultReport, scaled
from .history import Op
from .procs import Proc, ProcGroup
from .scenario import CheckpointMonitor, Load, client_observations, convergence, wait_client_version
from .stack import SETTINGS, Stack, servers
from .workload import HttpWriter, Pacer

SERVICES = ["alpha", "beta"]
WATCHED = "alpha"  # the service the client under test follows
API_ENV = {"API_WRITE_WAIT_MS": "300"}  # the write deadline is the default (10 s)
WRITER_TIMEOUT = 15.0  # longer than the write deadline: the API answers, the client does not cut


@pytest.fixture
async def cluster_stack(procs: ProcGroup, nats_cluster: NatsCluster, database_url: str,
                        tmp_path: Any) -> Any:
    s = Stack(procs=procs, nats=nats_cluster, database_url=database_url, work_dir=tmp_path, replicas=3)
    await s.provision()
    yield s
    procs.kill_all()


class CasWriter(HttpWriter):
    """Reads the current version, then writes with ``If-Match`` on it (a 409 is a lost race)."""

    async def run(self, stop: asyncio.Event, pacer: Pacer, *, max_writes: int | None = None) -> None:
        while not stop.is_set():
            version = await self._current()
            if version is not None:
                await self.write_one(if_match=version)
            await pacer.pause()

    async def _current(self) -> int | None:
        try:
            async with self.session.get(f"{self.base_url}/api/v1/config/{self.service}",
                                        timeout=aiohttp.ClientTimeout(total=5)) as resp:
                body = await resp.json(content_type=None)
                return int(body["version"]) if resp.status == 200 else 0 if resp.status == 404 else None
        except (TimeoutError, aiohttp.ClientError, ValueError, KeyError, TypeError):
            return None


async def start_system(stack: Stack, procs: ProcGroup) -> Proc:
    stack.start_projector()
    stack.start_api(env=API_ENV)
    await stack.wait_ready(timeout=60)
    async with aiohttp.ClientSession() as session:
        for service in SERVICES:  # a config to start from (the client then follows the stream)
            async with session.post(f"{stack.base_url}/api/v1/config/{service}", json={"w": "seed"},
                                    headers={"X-Change-Reason": "seed"}) as resp:
                assert resp.status in (200, 202), await resp.text()
    client = procs.client(WATCHED, stack.nats.url)
    await wait_client_version(client, WATCHED, stack, timeout=30, what="the client to start")
    return client


async def keyed_writers(load: Load, per_service: int = 2) -> None:
    await load.http_writers(SERVICES, per_service=per_service, pace=0.02, timeout=WRITER_TIMEOUT,
                            give_up_after=60, max_retry_pause=0.1)


def non_2xx(statuses: dict[str, int], allowed: tuple[str, ...] = ()) -> dict[str, int]:
    return {k: v for k, v in statuses.items() if not k.startswith("2") and k not in allowed}


def write_stall(ops: list[Op], since: float) -> float:
    """The longest a write attempt in flight at or started after ``since`` waited for its answer."""
    waits = [op.complete - op.invoke for op in ops
             if op.kind == "write" and op.complete is not None and op.complete >= since]
    return max(waits, default=0.0)


async def finish(stack: Stack, load: Load, client: Proc, cluster: NatsCluster, report: FaultReport) -> None:
    """Stop the load; the stream identical on every node; projection and client converged; check."""
    await load.stop()
    msgs = await stack.stream_msgs()
    last = msgs[-1].seq if msgs else 0

    def identical() -> bool:
        states = cluster.stream_states(SETTINGS.stream)
        return len(states) == len(cluster.nodes) and all(
            st is not None and st.get("last_seq") == last and st.get("messages") == len(msgs)
            for st in states.values())

    await wait_for(identical, timeout=30, interval=0.1,
                   what=f"every node to hold the stream up to {last}: {cluster.stream_states(SETTINGS.stream)}")
    await wait_client_version(client, WATCHED, stack, timeout=30, what="the client to converge")
    events = await stack.stream_events()
    report.set(client_updates=client_observations(load.history, client, WATCHED, events),
               statuses=load.statuses(), non_2xx_except_409=sum(non_2xx(load.statuses(), ("409",)).values()),
               stream_last_seq=last)
    await load.verify(report, contiguous_observations=True, stream=events)


@pytest.mark.timeout(120 + 60 * SCALE)
async def test_no_fault(cluster_stack: Stack, procs: ProcGroup, nats_cluster: NatsCluster,
                        fault_report: FaultReport) -> None:
    client = await start_system(cluster_stack, procs)
    load = Load(cluster_stack)
    await keyed_writers(load)
    session = await load.open()
    cas = [CasWriter(load.history, session, load.base_url, service, f"cas{i}-{service}",
                     timeout=WRITER_TIMEOUT, give_up_after=60, max_retry_pause=0.1)
           for service in SERVICES for i in range(2)]
    for w in cas:
        load.writers.append(w)
        load._write_pace[id(w)] = Pacer(0.01)
    await load.start()
    await load.wait_acks(scaled(150), timeout=60 * SCALE, what="writes on the cluster")
    await finish(cluster_stack, load, client, nats_cluster, fault_report)
    unconditional = [w for w in load.writers if w not in cas]
    assert sum(w.stats.statuses.get("409", 0) for w in unconditional) == 0, load.statuses()
    assert non_2xx(load.statuses(), allowed=("409",)) == {}, load.statuses()
    fault_report.set(cas_conflicts_409=sum(w.stats.statuses.get("409", 0) for w in cas),
                     error_rate=round(sum(non_2xx(load.statuses(), ("409",)).values())
                                      / max(1, sum(load.statuses().values())), 4))


@pytest.mark.timeout(150 + 90 * SCALE)
async def test_leader_kill(cluster_stack: Stack, procs: ProcGroup, nats_cluster: NatsCluster,
                           fault_report: FaultReport) -> None:
    client = await start_system(cluster_stack, procs)
    load = Load(cluster_stack)
    await keyed_writers(load)
    await load.start()
    observer = await nats.connect(servers(nats_cluster.url), max_reconnect_attempts=-1)
    elections: list[float] = []
    stalls: list[float] = []
    try:
        for _ in range(scaled(1)):
            await load.wait_acks(20, after=time.monotonic(), timeout=30, what="writes before the kill")
            victim = await stream_leader(observer, SETTINGS.stream)
            assert victim is not None
            killed_at = time.monotonic()
            nats_cluster.node(victim).kill()
            leader, elected_at = await wait_stream_leader(observer, SETTINGS.stream, exclude=victim)
            elections.append(elected_at - killed_at)
            first = await load.wait_acks(10, after=elected_at, timeout=30, what="writes after the election")
            stalls.append(write_stall(load.history.ops, killed_at))
            fault_report.set(killed=victim, new_leader=leader, first_ack_after_election_s=round(first - elected_at, 3))
            nats_cluster.node(victim).start()
            await load.wait_acks(10, after=time.monotonic(), timeout=30, what="writes after the rejoin")
        await finish(cluster_stack, load, client, nats_cluster, fault_report)
    finally:
        await observer.close()
    fault_report.set(election_s=[round(e, 3) for e in elections],
                     longest_write_stall_s=round(max(stalls), 3),
                     stall_minus_election_s=round(max(s - e for s, e in zip(stalls, elections, strict=True)), 3))
    assert non_2xx(load.statuses()) == {}, load.statuses()


async def _readers_on_a_follower(observer: Any, stack: Stack, procs: ProcGroup,
                                 client: Proc) -> tuple[str, list[str], Proc]:
    """A follower holding the projector's or the client's consumer: (node, whose, client).
    Consumers are placed at random: restart the client (a new consumer) until one is."""
    for attempt in range(12):
        leader = await stream_leader(observer, SETTINGS.stream)
        hosts = await consumer_hosts(observer, SETTINGS.stream)
        readers: dict[str, str] = {}
        for h in hosts:
            if not h.push and h.filter_subject == SETTINGS.subject_wildcard:
                readers["projector"] = h.node
            elif h.push and h.bound and h.filter_subject == SETTINGS.subject(WATCHED):
                readers["client"] = h.node
        held = [node for node in readers.values() if node != leader]
        if leader and len(readers) == 2 and held:
            victim = max(set(held), key=held.count)
            return victim, sorted(r for r, node in readers.items() if node == victim), client
        if len(readers) == 2:
            client.kill()
            client = procs.client(WATCHED, stack.nats.url, name=f"client-{attempt + 1}")
            await wait_client_version(client, WATCHED, stack, timeout=30, what="the restarted client")
        await asyncio.sleep(0.2)  # consumers being created: look again
    raise AssertionError(f"no follower holds the projector's or the client's consumer: {hosts}")


@pytest.mark.timeout(150 + 90 * SCALE)
async def test_consumer_node_kill(cluster_stack: Stack, procs: ProcGroup, nats_cluster: NatsCluster,
                                  fault_report: FaultReport) -> None:
    client = await start_system(cluster_stack, procs)
    load = Load(cluster_stack)
    await keyed_writers(load)
    await load.start()
    monitor = CheckpointMonitor(cluster_stack, interval=0.05).start()
    observer = await nats.connect(servers(nats_cluster.url), max_reconnect_attempts=-1)
    recovered: dict[str, float] = {}
    try:
        await load.wait_acks(20, timeout=30, what="writes before the kill")
        victim, readers, client = await _readers_on_a_follower(observer, cluster_stack, procs, client)
        meta_before = nats_cluster.meta_leader()
        killed_at = time.monotonic()
        nats_cluster.node(victim).kill()
        meta_at = killed_at
        if meta_before == victim:
            await wait_for(lambda: nats_cluster.meta_leader() not in (None, victim), timeout=30,
                           what="a new meta leader")
            meta_at = time.monotonic()
        # Recovery of a reader: from the kill until it had the first write acknowledged after it.
        await wait_for(lambda: first_ack(load, killed_at) and first_ack(load, killed_at, WATCHED), timeout=30,
                       what=f"writes (one to {WATCHED}) made and acknowledged after the kill")
        first, mine = first_ack(load, killed_at), first_ack(load, killed_at, WATCHED)
        assert first is not None and mine is not None
        await wait_for(lambda: monitor.reached(first.seq or 0, killed_at) is not None, timeout=30,
                       what="the projector to pass the first write after the kill")
        recovered["projector"] = (monitor.reached(first.seq or 0, killed_at) or 0.0) - killed_at
        await wait_for(lambda: convergence(client, WATCHED, mine.version or 0, killed_at, {}) is not None,
                       timeout=30, what="the client to show the first write after the kill")
        recovered["client"] = convergence(client, WATCHED, mine.version or 0, killed_at, {}) or 0.0
        first_ack_s = min(first.complete or 0.0, mine.complete or 0.0) - killed_at
        nats_cluster.node(victim).start()
        await load.wait_acks(10, after=time.monotonic(), timeout=30, what="writes after the rejoin")
        await finish(cluster_stack, load, client, nats_cluster, fault_report)
    finally:
        await monitor.stop()
        await observer.close()
    worst = max(recovered[r] for r in readers)
    fault_report.set(killed=victim, readers_on_killed_node=readers, meta_leader_killed=meta_before == victim,
                     new_meta_leader_after_s=round(meta_at - killed_at, 3),
                     first_write_ack_after_kill_s=round(first_ack_s, 3),
                     recovery_after_kill_s={r: round(t, 3) for r, t in recovered.items()},
                     max_convergence_s=round(worst, 3),
                     recovery_after_new_leader_s=round(worst - (meta_at - killed_at), 3))
    assert non_2xx(load.statuses()) == {}, load.statuses()


def first_ack(load: Load, after: float, service: str | None = None) -> Op | None:
    """The first write made after ``after`` (to ``service``) to be acknowledged, if any yet."""
    ops = [op for op in load.history.ops if op.kind == "write" and op.outcome == "ok"
           and op.invoke >= after and op.complete is not None and op.seq is not None
           and op.version is not None and (service is None or op.service == service)]
    return min(ops, key=lambda op: op.complete or 0.0) if ops else None
