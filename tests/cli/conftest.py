"""Fixtures of the CLI tests: the CLI run in-process with its own environment and streams.

``cli(*argv, env=..., stdin=...)`` calls ``ops.cli.main`` the way the console script does,
with an explicit environment (never ``os.environ``) and captured stdout/stderr. In an async
test, ``await acli(...)`` does the same on a worker thread (``main`` runs its own event loop).
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import yaml

from ops.cli import main
from ops.embedded import REPO_ROOT, NatsServer, free_port
from tests.support.waiting import wait_for


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


CliRunner = Callable[..., CliResult]
AsyncCliRunner = Callable[..., Awaitable[CliResult]]


def run_cli(*argv: str, env: Mapping[str, str] | None = None, stdin: bytes = b"") -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    environ = {"NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    code = main(list(argv), environ=environ, stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> CliRunner:
    return run_cli


@pytest.fixture
def acli() -> AsyncCliRunner:
    async def run(*argv: str, env: Mapping[str, str] | None = None, stdin: bytes = b"") -> CliResult:
        return await asyncio.to_thread(run_cli, *argv, env=env, stdin=stdin)

    return run


# --- a running stack (`config-ledger up` in the background) ------------------------------------

_STACK_VARS = ("NATS_URL", "DATABASE_URL", "API_", "LEDGER_", "CONFIG_LEDGER_")


def cli_argv() -> list[str]:
    """How `make run` starts the CLI: the console script, when it points at ops.cli:main.

    Until pyproject's ``config-ledger`` entry point is switched to ``ops.cli:main`` (and the
    package reinstalled), the script still names the old module: run the same ``main`` as
    ``python -m ops.cli`` then.
    """
    script = Path(sys.executable).parent / "config-ledger"
    if script.is_file() and "from ops.cli import main" in script.read_text(errors="replace"):
        return [str(script)]
    return [sys.executable, "-m", "ops.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would point the stack elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STACK_VARS)}
    env.update(NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


async def readyz(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(
            f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=2)
        ) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


@dataclass
class UpProcess:
    """`config-ledger up` running in the background, its output in ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path
    api_url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """Until `up` has said it is up (after its own /readyz check) and /readyz answers 200."""

        async def probe() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"`up` exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            return "Config Ledger is up" in self.output() and await readyz(self.api_url)

        try:
            await wait_for(probe, timeout=timeout, interval=0.2, what=f"{self.api_url}/readyz")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- up's output ---\n{self.output()[-3000:]}") from None

    def interrupt(self, timeout: float = 60.0, sig: signal.Signals = signal.SIGINT) -> int:
        """Ctrl-C (or ``sig``), and wait for it to finish."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"`up` did not stop after SIGINT:\n{self.output()[-3000:]}") from None


def start_up(env: Mapping[str, str], log: Path, *args: str) -> UpProcess:
    handle = open(log, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([*cli_argv(), "up", *args], env=dict(env), stdout=handle,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
    handle.close()
    return UpProcess(proc, log, f"http://127.0.0.1:{env['API_PORT']}")


@dataclass(frozen=True)
class RunningStack:
    api_url: str
    token: str
    nats_url: str
    database_url: str
    data_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        """What the CLI needs to reach this stack (admin through the API, auditor on NATS)."""
        return {"CONFIG_LEDGER_URL": self.api_url, "CONFIG_LEDGER_TOKEN": self.token,
                "NATS_URL": self.nats_url, **extra}


async def _create_database(admin_url: str) -> str:
    name = f"cli_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def stack(work_dir: Path, pg_cluster: str) -> Iterator[RunningStack]:
    """One `config-ledger up --auth` for the admin-command tests, on servers that already run
    (NATS_URL / DATABASE_URL given: the "point it at existing servers" path)."""
    nats = NatsServer(work_dir / "cli-nats").start()
    database_url = asyncio.run(_create_database(pg_cluster))
    data_dir = work_dir / "cli-stack"
    env = clean_env(NATS_URL=nats.url, DATABASE_URL=database_url, API_PORT=str(free_port()),
                    LEDGER_DATA_DIR=str(data_dir))
    up = start_up(env, work_dir / "cli-stack-up.log", "--auth")
    try:
        asyncio.run(up.wait_ready())
        tokens = yaml.safe_load((data_dir / "tokens.yaml").read_text())
        token = next(t["token"] for t in tokens["tokens"] if t["role"] == "admin")
        yield RunningStack(up.api_url, token, nats.url, database_url, data_dir)
    finally:
        up.interrupt()
        nats.kill()
