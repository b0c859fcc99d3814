"""``python -m projector``: commands, one-line errors, documented exit codes, clean SIGTERM."""

from __future__ import annotations

import io
import json
import signal
from typing import Any

import asyncpg

import projector
from ledger import Ledger, Replace
from ops.embedded import free_port
from projector import ProjectorSettings
from projector.__main__ import _progress
from tests.support.waiting import wait_for

from .helpers import Processes, checkpoint, env_for, wait_exit


def test_public_names() -> None:
    assert (projector.__doc__ or "").startswith("projector package (Config Ledger)")
    for name in projector.__all__:
        assert getattr(projector, name) is not None, name
    assert {"migrate", "read_status", "wait_applied", "NOTIFY_CHANNEL", "Projector", "rebuild"} <= set(projector.__all__)


async def test_usage_and_unavailable_errors_are_one_line(procs: Processes, database_url: str) -> None:
    no_db = procs.spawn({"PATH": "/usr/bin:/bin"}, "status")
    assert await wait_exit(no_db, timeout=30) == 2
    assert procs.stderr(no_db).strip().splitlines() == ["error: DATABASE_URL: Field required"]

    bad = procs.spawn({"DATABASE_URL": database_url, "PROJECTOR_BATCH_SIZE": "0"}, "run")
    assert await wait_exit(bad, timeout=30) == 2
    assert procs.stderr(bad).startswith("error: PROJECTOR_BATCH_SIZE:")

    down = procs.spawn({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}, "status")
    assert await wait_exit(down, timeout=30) == 3
    lines = procs.stderr(down).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: PostgreSQL is unavailable")

    missing = database_url.rsplit("/", 1)[0] + "/no_such_database"
    wrong = procs.spawn({"DATABASE_URL": missing}, "migrate")
    assert await wait_exit(wrong, timeout=30) == 2
    assert "check DATABASE_URL" in procs.stderr(wrong)


async def test_migrate_status_and_a_clean_sigterm(
    ledger: Ledger, projector_settings: ProjectorSettings, procs: Processes, database_url: str
) -> None:
    env = env_for(projector_settings)
    migrate = procs.spawn(env, "migrate")
    assert await wait_exit(migrate, timeout=30) == 0
    assert "0001_init.sql" in procs.stdout(migrate)

    for i in range(3):
        await ledger.append("cli", Replace({"i": i}), actor="t")
    run = procs.spawn(env, "run")
    conn: Any = await asyncpg.connect(database_url)
    try:
        await wait_for(lambda: _at(conn, 3), timeout=30, what="the projection to catch up")
        status = procs.spawn(env, "status", "--json")
        assert await wait_exit(status, timeout=30) == 0
        body = json.loads(procs.stdout(status))
        assert (body["state"], body["last_applied_seq"], body["failed_seq"]) == ("running", 3, None)
        assert (body["stream_last_seq"], body["lag_events"], body["lag_seconds"]) == (3, 0, 0.0)
        assert body["heartbeat_age_seconds"] < 5
        assert body["instance"].endswith(f":{run.pid}")
        assert {"stream_last_seq", "lag_events", "lag_seconds", "heartbeat_at", "reason"} <= set(body)

        run.send_signal(signal.SIGTERM)
        assert await wait_exit(run, timeout=15) == 0, procs.stderr(run)
        human = procs.spawn(env, "status")
        assert await wait_exit(human, timeout=30) == 0
        assert "state:      stopped" in procs.stdout(human)
        assert "applied:    3 of 3" in procs.stdout(human)
    finally:
        await conn.close()


async def _at(conn: Any, seq: int) -> bool:
    return await checkpoint(conn) == seq


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    term = _Terminal()
    with _progress("auto", term) as update:
        assert update is not None
        update(0, 200)
        update(200, 200)
    assert "200/200" in term.getvalue() and "rebuild" in term.getvalue()
    plain = io.StringIO()
    with _progress("auto", plain) as update:
        assert update is not None
        for done in range(0, 201, 50):
            update(done, 200)
    lines = plain.getvalue().splitlines()
    assert lines[0] == "rebuild: 0/200 events (0%)" and lines[-1] == "rebuild: 200/200 events (100%)"
    with _progress("none", plain) as update:
        assert update is None
