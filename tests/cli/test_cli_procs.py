"""The data folder's lock and process record (ops/cli_procs.py): one `up` per folder, and a
later `up` stops what a SIGKILLed one left running — only processes it can prove are its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledger.errors import UsageError
from ops.cli_procs import StackLock, start_time, stop_leftovers
from tests.support.waiting import wait_for

from .proctree import stat_of


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)


def test_one_up_per_data_folder(tmp_path: Path) -> None:
    first = StackLock(tmp_path).acquire()
    with pytest.raises(UsageError, match="another `config-ledger up`"):
        StackLock(tmp_path).acquire()
    first.release()
    StackLock(tmp_path).acquire().release()


async def test_leftovers_of_a_killed_up_are_stopped(tmp_path: Path) -> None:
    proc = sleeper()
    try:
        crashed = StackLock(tmp_path).acquire()
        crashed.record("nats", proc.pid, group=True)
        crashed._lock_file.close()  # type: ignore[union-attr]  # as if the process died: lock gone, record kept
        later = StackLock(tmp_path).acquire()
        leftovers = later.leftovers()
        assert [(r.name, r.pid) for r in leftovers] == [("nats", proc.pid)]
        stop_leftovers(leftovers, timeout=5)
        await wait_for(lambda: proc.poll() is not None, timeout=10, what="the leftover to stop")
        later.release()
    finally:
        proc.kill()
        proc.wait()


def test_a_recycled_pid_is_not_touched(tmp_path: Path) -> None:
    proc = sleeper()
    try:
        lock = StackLock(tmp_path).acquire()
        lock.record("api", proc.pid, group=True)
        started = start_time(proc.pid)
        assert started is not None
        # Same pid, another start time: not the process we recorded.
        lock.records_path.write_text(lock.records_path.read_text().replace(str(started), str(started + 1)))
        assert lock.leftovers() == []
        assert stat_of(proc.pid) is not None
        lock.release()
    finally:
        proc.kill()
        proc.wait()
