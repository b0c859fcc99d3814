"""The system under test for one scenario, and the invariants read back from it.

``Stack`` holds a private nats-server, a database, and the projector / API processes; it reads
the whole stream back (the source of truth for the checker) and compares PostgreSQL with it.
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nats

from ledger import LedgerSettings
from ledger.event import Event
from ledger.nats_io import StoredMsg, stream_last_seq
from ledger.streams import StreamsFile, apply_streams, load_streams_file
from ledger.watch import replay
from ops.embedded import REPO_ROOT, NatsServer
from ops.nats_cluster import NatsCluster
from tests.support.waiting import wait_for

from .history import StreamEvent
from .procs import Proc, ProcGroup

__all__ = ["Stack", "provision", "read_stream_msgs", "to_stream_events", "projection_problems"]

SETTINGS = LedgerSettings()  # the stack runs with the defaults: CONFIG_LEDGER, config.events.>


def stream_spec(replicas: int | None = None) -> StreamsFile:
    return load_streams_file(REPO_ROOT / "streams.yaml", replicas=replicas)


def servers(nats_url: str) -> list[str]:
    """``nats://a,nats://b`` (a cluster) -> the list nats-py takes."""
    return [u.strip() for u in nats_url.split(",") if u.strip()]


async def provision(nats_url: str, timeout: float = 15.0, replicas: int | None = None) -> None:
    """Apply streams.yaml (idempotent), retrying while the server comes up."""

    async def attempt() -> bool:
        nc = await nats.connect(servers(nats_url), connect_timeout=1, max_reconnect_attempts=0)
        try:
            await apply_streams(nc.jetstream(timeout=3), stream_spec(replicas))
            return True
        finally:
            await nc.close()

    await wait_for(attempt, timeout=timeout, interval=0.2, what=f"streams.yaml applied on {nats_url}")


async def migrate_db(database_url: str) -> None:
    from projector.migrate import migrate

    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def read_stream_msgs(nats_url: str, settings: LedgerSettings = SETTINGS) -> list[StoredMsg]:
    """Every stored message of the ledger stream, in order."""
    nc = await nats.connect(servers(nats_url), connect_timeout=2, max_reconnect_attempts=3)
    try:
        last = await stream_last_seq(nc, settings.stream)
        out = [m async for m in replay(nc, settings.stream, settings.subject_wildcard, stop_seq=last)]
    finally:
        await nc.close()
    seqs = [m.seq for m in out]
    assert seqs == sorted(set(seqs)), "replay returned messages out of order or twice"
    return out


def to_stream_events(msgs: list[StoredMsg], settings: LedgerSettings = SETTINGS) -> list[StreamEvent]:
    events = []
    for m in msgs:
        service = settings.service_of(m.subject)
        try:
            ev = Event.from_bytes(m.data)
        except Exception:  # noqa: BLE001 - a poison message is data for the checker
            events.append(StreamEvent(m.seq, service, None, None, None))
            continue
        events.append(StreamEvent.from_event(m.seq, ev))
    return events


async def pg_rows(database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        versions = await conn.fetch(
            "SELECT stream_seq, service, version, event_id::text AS event_id, hash, prev_hash, "
            "config::text AS config, kind FROM config_versions ORDER BY stream_seq")
        current = await conn.fetch(
            "SELECT service, version, hash, stream_seq, config::text AS config FROM config_current")
        checkpoint = await conn.fetchval("SELECT last_seq FROM projector_checkpoint")
        status = await conn.fetchrow("SELECT state, reason, failed_seq FROM projector_status")
    finally:
        await conn.close()
    return {"versions": versions, "current": current, "checkpoint": checkpoint,
            "status": dict(status) if status else None}


async def projection_problems(database_url: str, msgs: list[StoredMsg]) -> list[str]:
    """PostgreSQL vs the stream: config_versions row for row, config_current, checkpoint."""
    import orjson

    rows = await pg_rows(database_url)
    problems: list[str] = []
    events = [(m.seq, Event.from_bytes(m.data)) for m in msgs]
    want = [(seq, e.service, e.version, e.event_id, e.hash, e.prev_hash, e.config, e.kind.value)
            for seq, e in events]
    got = [(r["stream_seq"], r["service"], r["version"], r["event_id"], r["hash"], r["prev_hash"],
            orjson.loads(r["config"]) if r["config"] is not None else None, r["kind"])
           for r in rows["versions"]]
    if got != want:
        gs, ws = {g[0]: g for g in got}, {w[0]: w for w in want}
        missing = sorted(ws.keys() - gs.keys())
        extra = sorted(gs.keys() - ws.keys())
        differ = sorted(s for s in ws.keys() & gs.keys() if ws[s] != gs[s])
        problems.append(f"config_versions != stream: missing seqs {missing[:10]} ({len(missing)}), "
                        f"extra seqs {extra[:10]} ({len(extra)}), differing seqs {differ[:10]} "
                        f"({len(differ)})")
    latest: dict[str, tuple[int, Event]] = {}
    for seq, e in events:
        latest[e.service] = (seq, e)
    cur = {r["service"]: (r["stream_seq"], r["version"], r["hash"],
                          orjson.loads(r["config"]) if r["config"] is not None else None)
           for r in rows["current"]}
    want_cur = {s: (seq, e.version, e.hash, e.config) for s, (seq, e) in latest.items()}
    if cur != want_cur:
        bad = sorted(s for s in cur.keys() | want_cur.keys() if cur.get(s) != want_cur.get(s))
        problems.append(f"config_current != last event per service for {bad[:10]}")
    last = msgs[-1].seq if msgs else 0
    if rows["checkpoint"] != last:
        problems.append(f"checkpoint {rows['checkpoint']} != stream last seq {last}")
    return problems


@dataclass
class Stack:
    """nats-server + database + projector + API processes for one scenario."""

    procs: ProcGroup
    nats: NatsServer | NatsCluster  # anything with .url (a cluster's lists every node)
    database_url: str
    work_dir: Path
    replicas: int | None = None  # the stream's replicas (3 on a cluster); None: streams.yaml's
    projector: Proc | None = None
    api: Proc | None = None
    api_nats_url: str | None = None  # the URL the API connects to (a chaos proxy, maybe)

    @property
    def api_port(self) -> int:
        assert self.api is not None
        return int(self.api.port)  # type: ignore[attr-defined]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def provision(self) -> None:
        """streams.yaml on NATS, migrations on PostgreSQL (what an operator runs before start)."""
        await provision(self.nats.url, replicas=self.replicas)
        await migrate_db(self.database_url)

    def start_projector(self, env: dict[str, str] | None = None) -> Proc:
        if self.projector is None:
            self.projector = self.procs.projector(self.nats.url, self.database_url, env=env)
        else:
            self.projector.start()
        return self.projector

    def start_api(self, nats_url: str | None = None, env: dict[str, str] | None = None) -> Proc:
        if self.api is None:
            self.api_nats_url = nats_url or self.nats.url
            self.api = self.procs.api(self.api_nats_url, self.database_url, env=env)
        else:
            self.api.start()
        return self.api

    async def wait_api_up(self, timeout: float = 30.0) -> None:
        """The API answers /healthz (it listens; NATS/PG may still be down)."""
        assert self.api is not None

        async def up() -> bool:
            if not self.api.running():  # type: ignore[union-attr]
                raise AssertionError(f"API exited: {self.api.log_tail()}")  # type: ignore[union-attr]
            async with aiohttp.ClientSession() as s, s.get(
                f"{self.base_url}/healthz", timeout=aiohttp.ClientTimeout(total=1)
            ) as resp:
                return resp.status == 200

        await wait_for(up, timeout=timeout, interval=0.1, what="the API to listen")

    async def readyz(self) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.get(
            f"{self.base_url}/readyz", timeout=aiohttp.ClientTimeout(total=3)
        ) as resp:
            body: Any
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = await resp.text()
            return resp.status, body

    async def wait_ready(self, timeout: float = 30.0) -> None:
        async def ready() -> bool:
            status, _ = await self.readyz()
            return status == 200

        await wait_for(ready, timeout=timeout, interval=0.1, what="/readyz to turn green")

    async def stream_msgs(self) -> list[StoredMsg]:
        return await read_stream_msgs(self.nats.url)

    async def stream_events(self) -> list[StreamEvent]:
        return to_stream_events(await self.stream_msgs())

    async def checkpoint(self) -> int:
        conn = await asyncpg.connect(self.database_url, timeout=3)
        try:
            return int(await conn.fetchval("SELECT last_seq FROM projector_checkpoint") or 0)
        finally:
            await conn.close()

    async def diagnose(self) -> str:
        """What the projector is doing, for a failure message: its status row and sessions."""
        lines = []
        if self.projector is not None:
            lines.append(f"projector process: {self.projector!r}")
        try:
            conn = await asyncpg.connect(self.database_url, timeout=3)
            try:
                status = await conn.fetchrow("SELECT *, now() AS now FROM projector_status")
                cp = await conn.fetchval("SELECT last_seq FROM projector_checkpoint")
                lines.append(f"checkpoint {cp}; status {dict(status) if status else None}")
                for r in await conn.fetch(
                    "SELECT pid, application_name, state, wait_event_type, wait_event, "
                    "now() - state_change AS in_state, left(query, 120) AS query "
                    "FROM pg_stat_activity WHERE application_name LIKE 'projector%'"):
                    lines.append(f"  pg session {dict(r)}")
            finally:
                await conn.close()
        except Exception as exc:  # noqa: BLE001 - a diagnosis must not raise
            lines.append(f"(PostgreSQL not readable: {exc!r})")
        if self.projector is not None and self.projector.argv[1].endswith("taskdump.py"):
            self.projector._signal_group(signal.SIGUSR1)
            with contextlib.suppress(AssertionError):
                await wait_for(lambda: "end of task dump" in self.projector.log_tail(20000),  # type: ignore[union-attr]
                               timeout=5, what="the task dump")
            lines.append("projector log tail:\n" + self.projector.log_tail(12000))
        elif self.projector is not None:
            lines.append("projector log tail:\n" + self.projector.log_tail(1500))
        return "\n".join(lines)

    async def wait_exit(self, proc: Proc, *, timeout: float, what: str) -> None:
        """Wait for ``proc`` to exit; on timeout, fail with a diagnosis of the projector."""
        try:
            await wait_for(lambda: not proc.running(), timeout=timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await self.diagnose()}") from None

    async def hung_projector(self, stale_s: float = 10.0) -> str | None:
        """The signature of the projector hang after a PostgreSQL crash (see test_known_bugs.py):
        the process is alive and 'running', but its heartbeat stopped and it holds no session."""
        if self.projector is None or not self.projector.running():
            return None
        try:
            conn = await asyncpg.connect(self.database_url, timeout=3)
            try:
                row = await conn.fetchrow(
                    "SELECT state, extract(epoch FROM now() - heartbeat_at) AS age FROM projector_status")
                sessions = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'projector%'")
            finally:
                await conn.close()
        except Exception:  # noqa: BLE001 - no diagnosis without PostgreSQL
            return None
        if row is not None and row["state"] == "running" and row["age"] > stale_s and sessions == 0:
            return (f"projector alive, state 'running', heartbeat {row['age']:.0f} s old, "
                    "no PostgreSQL session")
        return None

    async def wait_projection_idle(self, timeout: float = 30.0) -> list[StoredMsg]:
        """Wait until the checkpoint equals the stream's last sequence; return the stream."""
        msgs = await self.stream_msgs()
        last = msgs[-1].seq if msgs else 0

        async def caught_up() -> bool:
            if self.projector is not None and not self.projector.running():
                raise AssertionError(f"projector exited ({self.projector.returncode}):\n"
                                     f"{self.projector.log_tail()}")
            return await self.checkpoint() >= last

        try:
            await wait_for(caught_up, timeout=timeout, interval=0.1,
                           what=f"the projector to reach stream seq {last}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await self.diagnose()}") from None
        return msgs

    async def projection_problems(self, timeout: float = 30.0) -> list[str]:
        msgs = await self.wait_projection_idle(timeout)
        return await projection_problems(self.database_url, msgs)
