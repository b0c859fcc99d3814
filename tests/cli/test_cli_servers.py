"""`config-ledger projector run|rebuild|status|migrate` and `config-ledger api serve`: the CLI
runs `python -m projector` / `python -m api` in the foreground, so these run as processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import BinaryIO

import aiohttp
import pytest

from ops.embedded import REPO_ROOT, free_port
from ops.stack import EXAMPLE_SERVICE
from tests.support.waiting import wait_for

from .conftest import RunningStack, _create_database, clean_env, cli_argv, readyz


def run(*argv: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli_argv(), *argv], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


def log_file(path: Path) -> BinaryIO:
    return open(path, "wb")  # noqa: SIM115 - the caller closes it


async def stop(proc: asyncio.subprocess.Process) -> int:
    """Ctrl-C, as a user would; SIGKILL (its child dies with it) if it does not stop."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    try:
        return await asyncio.wait_for(proc.wait(), 45)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise


def one_line_error(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr, result.stderr


async def test_projector_migrate_run_status_rebuild(stack: RunningStack, pg_cluster: str, tmp_path: Path) -> None:
    database_url = await _create_database(pg_cluster)
    env = clean_env(NATS_URL=stack.nats_url)
    migrated = await asyncio.to_thread(run, "projector", "migrate", "--database-url", database_url, env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "0001" in migrated.stdout

    log = tmp_path / "projector.log"
    with log_file(log) as handle:
        projector = await asyncio.create_subprocess_exec(
            *cli_argv(), "projector", "run", "--database-url", database_url, env=env,
            stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        await wait_for(lambda: "is the active projector" in log.read_text(), timeout=60,
                       what="the projector to lead")

        async def caught_up() -> bool:
            done = await asyncio.to_thread(run, "projector", "status", "--json", "--database-url", database_url,
                                           env=env)
            status = json.loads(done.stdout)
            return done.returncode == 0 and 0 < status["stream_last_seq"] == status["last_applied_seq"]

        await wait_for(caught_up, timeout=60, interval=0.3, what="the new projection to catch up")
        human = await asyncio.to_thread(run, "projector", "status", "--database-url", database_url, env=env)
        assert human.returncode == 0 and "state:" in human.stdout and "running" in human.stdout

        rebuilt = await asyncio.to_thread(run, "projector", "rebuild", "--progress", "plain",
                                          "--lock-timeout", "60", "--database-url", database_url, env=env)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "rebuilt" in rebuilt.stdout and "rebuild:" in rebuilt.stderr  # plain progress lines
    finally:
        code = await stop(projector)
    assert code == 0, log.read_text()[-2000:]


@pytest.mark.parametrize("action", ["run", "rebuild", "status", "migrate"])
def test_projector_user_error_is_one_line(action: str) -> None:
    result = run("projector", action, "--database-url", "mysql://nope", env=clean_env())
    one_line_error(result, 2, "DATABASE_URL")


async def test_api_serve(stack: RunningStack, tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(API_AUTH="off")
    log = tmp_path / "api.log"
    with log_file(log) as handle:
        api = await asyncio.create_subprocess_exec(
            *cli_argv(), "api", "serve", "--port", str(port), "--nats-url", stack.nats_url,
            "--database-url", stack.database_url, env=env, stdout=handle, stderr=subprocess.STDOUT,
            cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_for(lambda: readyz(url), timeout=60, interval=0.2, what="the second API to be ready")
        async with aiohttp.ClientSession() as session, session.get(
                f"{url}/api/v1/config/{EXAMPLE_SERVICE}") as resp:
            assert resp.status == 200
    finally:
        code = await stop(api)
    assert code == 0, log.read_text()[-2000:]


def test_api_serve_user_error_is_one_line() -> None:
    result = run("api", "serve", "--port", "70000", env=clean_env(API_AUTH="off"))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "API_PORT" in lines[0], result.stderr
