"""Process runners: projector, API and client-under-test, each its own OS process.

Every process starts in a session (process group) of its own, so SIGKILL / SIGSTOP / SIGCONT hit
the whole of it and nothing else. ``ProcGroup`` remembers every process it started and kills
them all (and resumes stopped ones first) in teardown: no orphans.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ops.embedded import REPO_ROOT, free_port

__all__ = ["Proc", "ProcGroup", "DRIVER"]

DRIVER = Path(__file__).resolve().parent / "client_driver.py"
TASKDUMP = Path(__file__).resolve().parent / "taskdump.py"


def python_module(*args: str) -> list[str]:
    """``python -m <args>``; through ``taskdump.py`` (SIGUSR1 dumps asyncio tasks) when
    ``FAULTS_TASKDUMP=1``."""
    if os.environ.get("FAULTS_TASKDUMP") == "1":
        return [sys.executable, str(TASKDUMP), *args]
    return [sys.executable, "-m", *args]


class Proc:
    """One child process: start, SIGKILL, SIGTERM, SIGSTOP/SIGCONT, restart with the same command.

    stdout+stderr go to ``log_path`` unless ``json_stdout``: then stdout is read line by line on a
    thread, each JSON line appended to ``lines`` (stderr still goes to the log).
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path,
                 *, json_stdout: bool = False) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.json_stdout = json_stdout
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[dict[str, Any]] = []
        self.starts = 0
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> Proc:
        if self.running():
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        log.write(f"\n==== start #{self.starts + 1} {time.strftime('%H:%M:%S')} {self.argv}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.json_stdout else log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        if self.json_stdout:
            assert self.proc.stdout is not None
            self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
            self._reader.start()
        return self

    def _read(self, stream: Any) -> None:
        for raw in stream:
            try:
                item = json.loads(raw)
            except ValueError:
                with contextlib.suppress(OSError), open(self.log_path, "ab") as log:
                    log.write(b"stdout: " + raw)
                continue
            if isinstance(item, dict):
                with self._lock:
                    self.lines.append(item)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.lines)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def _signal_group(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process group (a stopped process dies too) and reap it."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.wait(10)
        self._join_reader()

    def terminate(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        self._signal_group(signal.SIGCONT)
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._join_reader()

    def pause(self) -> None:
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def restart(self) -> Proc:
        self.kill()
        return self.start()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} rc={self.returncode}>"


class ProcGroup:
    """Starts processes for one test and kills every one of them at the end."""

    def __init__(self, log_dir: Path, base_env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.base_env = dict(base_env if base_env is not None else os.environ)
        self.base_env.setdefault("PYTHONUNBUFFERED", "1")
        self.procs: list[Proc] = []

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str], *,
              json_stdout: bool = False, start: bool = True) -> Proc:
        merged = {**self.base_env, **{k: str(v) for k, v in env.items()}}
        proc = Proc(name, argv, merged, self.log_dir / f"{name}.log", json_stdout=json_stdout)
        self.procs.append(proc)
        return proc.start() if start else proc

    def projector(self, nats_url: str, database_url: str, *, name: str = "projector",
                  env: Mapping[str, str] | None = None) -> Proc:
        return self.spawn(name, python_module("projector", "run"),
                          {"NATS_URL": nats_url, "DATABASE_URL": database_url, **(env or {})})

    def api(self, nats_url: str, database_url: str, *, port: int | None = None, name: str = "api",
            env: Mapping[str, str] | None = None) -> Proc:
        port = port or free_port()
        proc = self.spawn(name, python_module("api"), {
            "NATS_URL": nats_url, "DATABASE_URL": database_url, "API_HOST": "127.0.0.1",
            "API_PORT": str(port), "API_AUTH": "off",
            # every load generator of a scenario comes from 127.0.0.1: no per-address connection cap
            "API_MAX_CONNECTIONS_PER_CLIENT": "0", **(env or {}),
        })
        proc.port = port  # type: ignore[attr-defined]
        return proc

    def client(self, service: str, nats_url: str | None, *, name: str = "client",
               lkg_path: Path | None = None, safe_defaults: Any = None,
               extra: Sequence[str] = ()) -> Proc:
        argv = [sys.executable, str(DRIVER), "--service", service]
        if nats_url:
            argv += ["--nats-url", nats_url]
        if lkg_path is not None:
            argv += ["--lkg", str(lkg_path)]
        if safe_defaults is not None:
            argv += ["--defaults", json.dumps(safe_defaults)]
        argv += list(extra)
        return self.spawn(name, argv, {}, json_stdout=True)

    def kill_all(self) -> None:
        for proc in reversed(self.procs):
            proc.resume()
            proc.kill()

    def describe(self) -> str:
        return "\n".join(f"--- {p!r} log tail:\n{p.log_tail(1500)}" for p in self.procs)
