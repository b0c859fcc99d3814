"""Helpers for the projector tests: reading the stream and the projection, running projectors.

The expected projection is computed from the stream through an independent path (direct gets
by sequence, ``Event.from_bytes``, ``version_row``), not through the projector's reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from nats.aio.client import Client as NATS

from ledger import nats_io
from ledger.event import Event
from ledger.nats_io import StoredMsg
from ops.embedded import REPO_ROOT
from projector import Projector, ProjectorSettings
from projector.rows import VersionRow, current_rows, version_row

VERSION_SELECT = (
    "SELECT stream_seq, service, version, kind, change::text, config::text, actor, reason, "
    "occurred_at, stored_at, event_id::text, prev_hash, hash FROM config_versions ORDER BY stream_seq"
)


def settings_for(ledger_settings: Any, database_url: str, **extra: Any) -> ProjectorSettings:
    return ProjectorSettings(
        database_url=database_url,
        nats_url=ledger_settings.nats_url,
        stream=ledger_settings.stream,
        subject_prefix=ledger_settings.subject_prefix,
        **extra,
    )


def env_for(settings: ProjectorSettings, **extra: str) -> dict[str, str]:
    """Environment for ``python -m projector`` subprocesses (no inherited settings)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "LEDGER_STREAM": settings.stream,
        "LEDGER_SUBJECT_PREFIX": settings.subject_prefix,
        "PROJECTOR_BATCH_SIZE": str(settings.batch_size),
        "PROJECTOR_BATCH_DELAY_MS": str(settings.batch_delay_ms),
        "PROJECTOR_HEARTBEAT_MS": str(settings.heartbeat_ms),
        "PROJECTOR_LOCK_POLL_MS": str(settings.lock_poll_ms),
        "PROJECTOR_RETRY_MAX_MS": str(settings.retry_max_ms),
    }
    env.update(extra)
    return env


# --- the stream ----------------------------------------------------------------------------------


async def stream_messages(nc: NATS, settings: ProjectorSettings) -> list[StoredMsg]:
    """Every message on the stream, by sequence, with exact store times (direct gets)."""
    last = await nats_io.stream_last_seq(nc, settings.stream)
    out: list[StoredMsg] = []
    for start in range(1, last + 1, 200):
        chunk = await asyncio.gather(
            *(
                nats_io.direct_next(nc, settings.stream, settings.subject_wildcard, seq)
                for seq in range(start, min(start + 200, last + 1))
            )
        )
        for seq, msg in zip(range(start, last + 1), chunk, strict=False):
            assert msg is not None and msg.seq == seq, f"stream has no message at {seq}"
            out.append(msg)
    return out


def rows_of(messages: list[StoredMsg]) -> list[VersionRow]:
    return [version_row(Event.from_bytes(m.data), m.seq, m.stored_at) for m in messages]


def comparable(row: tuple[Any, ...] | VersionRow) -> tuple[Any, ...]:
    """A version row with its JSON columns parsed (jsonb text is not canonical)."""
    r = VersionRow(*row)
    return r._replace(
        change=None if r.change is None else orjson.loads(r.change),
        config=None if r.config is None else orjson.loads(r.config),
    )


# --- the projection ------------------------------------------------------------------------------


async def pg_versions(conn: Any) -> list[VersionRow]:
    return [VersionRow(*r) for r in await conn.fetch(VERSION_SELECT)]


async def pg_current(conn: Any) -> dict[str, tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT service, version, kind, config::text, hash, actor, reason, updated_at, stored_at, "
        "stream_seq FROM config_current"
    )
    return {r["service"]: _current_comparable(tuple(r)) for r in rows}


def _current_comparable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    config = row[3]
    return (*row[:3], None if config is None else orjson.loads(config), *row[4:])


async def checkpoint(conn: Any) -> int:
    value = await conn.fetchval("SELECT last_seq FROM projector_checkpoint WHERE id = 1")
    return int(value or 0)


async def snapshot(conn: Any) -> tuple[Any, ...]:
    """Everything the projection holds (to assert that nothing changed)."""
    return (
        [comparable(r) for r in await pg_versions(conn)],
        await pg_current(conn),
        await checkpoint(conn),
    )


async def assert_projection_equals(conn: Any, messages: list[StoredMsg]) -> None:
    """config_versions == the messages row for row; config_current == the last of each service."""
    expected = rows_of(messages)
    actual = await pg_versions(conn)
    assert len(actual) == len(expected), f"{len(actual)} rows in PostgreSQL, {len(expected)} events"
    for a, e in zip(actual, expected, strict=True):
        assert comparable(a) == comparable(e), f"row differs at stream sequence {e.stream_seq}"
    want = {s: _current_comparable(tuple(r)) for s, r in current_rows(expected).items()}
    assert await pg_current(conn) == want
    assert await checkpoint(conn) == (expected[-1].stream_seq if expected else 0)


async def assert_versions_contiguous(conn: Any) -> None:
    """Every service has versions 1..n exactly once."""
    bad = await conn.fetch(
        "SELECT service, count(*) AS n, max(version) AS top, count(DISTINCT version) AS d "
        "FROM config_versions GROUP BY service HAVING count(*) <> max(version) "
        "OR count(DISTINCT version) <> count(*) OR min(version) <> 1"
    )
    assert not bad, f"services with missing or duplicate versions: {[dict(r) for r in bad]}"


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


# --- running projectors ----------------------------------------------------------------------


@dataclass
class Running:
    """An in-process projector: ``task`` runs ``Projector.run(stop)``."""

    projector: Projector
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def finish(self, timeout: float = 10.0) -> BaseException | None:
        """Ask it to stop; return the exception it ended with (None for a clean stop)."""
        self.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            if not self.task.done():
                self.task.cancel()
                with contextlib.suppress(BaseException):
                    await self.task
                raise AssertionError(f"projector did not stop within {timeout}s") from exc
            return exc
        return None


@contextlib.asynccontextmanager
async def running(settings: ProjectorSettings, instance: str = "test") -> AsyncIterator[Running]:
    stop = asyncio.Event()
    projector = Projector(settings, instance=instance)
    handle = Running(projector, stop, asyncio.create_task(projector.run(stop)))
    try:
        yield handle
    finally:
        if not handle.task.done():
            await handle.finish()
        elif not handle.task.cancelled():
            handle.task.exception()  # retrieved: no "never retrieved" warning


@dataclass
class Processes:
    """``python -m projector …`` subprocesses of one test; all killed in teardown."""

    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        out = open(self.log_dir / f"projector-{n}.out", "wb")  # noqa: SIM115 - handed to the child
        err = open(self.log_dir / f"projector-{n}.err", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "projector", *args],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        out.close()
        err.close()
        self.procs.append(proc)
        return proc

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.log_dir / f"projector-{self.procs.index(proc)}.err").read_text(errors="replace")

    def stdout(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.log_dir / f"projector-{self.procs.index(proc)}.out").read_text(errors="replace")

    @staticmethod
    def kill9(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def processes(log_dir: Path) -> Iterator[Processes]:
    group = Processes(log_dir)
    try:
        yield group
    finally:
        group.kill_all()


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The exit code of ``proc`` (polled with a deadline, without blocking the loop)."""
    from tests.support.waiting import wait_for

    await wait_for(lambda: proc.poll() is not None, timeout=timeout, what=f"process {proc.pid} to exit")
    return int(proc.returncode)
