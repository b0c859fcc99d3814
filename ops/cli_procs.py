"""Processes `config-ledger up` started, recorded so that a later start can clean up after a crash.

``up`` holds an exclusive ``flock`` on ``<data>/run/up.lock`` for its whole life (two stacks
on one data folder would corrupt it). It records the servers and children it starts in
``<data>/run/processes.json`` as ``(name, pid, start time)``. If ``up`` itself was killed with
SIGKILL, the servers (which run in their own sessions so that Ctrl-C reaches only ``up``) are
still running: the next ``up`` finds them there, and stops them only when the pid *and* the
kernel's start time both match, so a recycled pid is never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from ledger.errors import UsageError

__all__ = ["ProcessRecord", "StackLock", "start_time", "alive", "stop_leftovers", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the forked child, before exec
    """``preexec_fn``: the kernel SIGTERMs this process when the thread that started it exits
    (Linux ``PR_SET_PDEATHSIG``), so a SIGKILLed parent leaves no child behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may contain spaces and parentheses
    if fields[0] == "Z":  # a zombie is gone for our purposes
        return None
    return int(fields[19])


def alive(pid: int, started: int) -> bool:
    return start_time(pid) == started


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start: int
    group: bool  # the process leads its own process group: signal the whole group

    @classmethod
    def of(cls, name: str, pid: int, *, group: bool) -> ProcessRecord | None:
        started = start_time(pid)
        return cls(name, pid, started, group) if started is not None else None


class StackLock:
    """The exclusive lock of one data folder, and its record of processes."""

    def __init__(self, data_dir: Path) -> None:
        self.run_dir = data_dir / "run"
        self._lock_file: IO[str] | None = None
        self._records: dict[str, ProcessRecord] = {}

    @property
    def records_path(self) -> Path:
        return self.run_dir / "processes.json"

    def acquire(self) -> StackLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.run_dir / "up.lock", "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise UsageError(
                f"another `config-ledger up` (pid {holder}) is using {self.run_dir.parent}; "
                "stop it, or set LEDGER_DATA_DIR to another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle
        return self

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.records_path.unlink()
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the flock
            self._lock_file = None

    def leftovers(self) -> list[ProcessRecord]:
        try:
            raw = json.loads(self.records_path.read_text())
            records = [ProcessRecord(**item) for item in raw]
        except (OSError, ValueError, TypeError):
            return []
        return [r for r in records if alive(r.pid, r.start)]

    def record(self, name: str, pid: int, *, group: bool) -> None:
        rec = ProcessRecord.of(name, pid, group=group)
        if rec is None:
            return
        self._records[name] = rec
        self._save()

    def forget(self, name: str) -> None:
        if self._records.pop(name, None) is not None:
            self._save()

    def _save(self) -> None:
        tmp = self.records_path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in self._records.values()]))
        tmp.replace(self.records_path)


def _signal(rec: ProcessRecord, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if rec.group:
            os.killpg(rec.pid, sig)
        else:
            os.kill(rec.pid, sig)


def stop_leftovers(records: list[ProcessRecord], *, timeout: float = 10.0) -> None:
    """SIGTERM (SIGINT for PostgreSQL: its fast shutdown), then SIGKILL after ``timeout``."""
    for rec in records:
        _signal(rec, signal.SIGINT if rec.name == "postgres" else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(r.pid, r.start) for r in records):
        time.sleep(0.05)
    for rec in records:
        if alive(rec.pid, rec.start):
            _signal(rec, signal.SIGKILL)
