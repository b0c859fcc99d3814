"""`config-ledger up` end to end: the embedded stack as `make run` starts it, on free ports.

Start it in the background, wait for /readyz, post a change with curl, see it through GET and
through `config-ledger watch`, kill the API (it is restarted), Ctrl-C it, check that no process
of its tree survives, and start it again on the same data folder: the change is still there and
the example is not re-seeded; SIGTERM stops it as cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import aiohttp
import pytest

from ops.embedded import free_port
from ops.stack import EXAMPLE_SERVICE
from tests.support.waiting import wait_for

from .conftest import UpProcess, clean_env, cli_argv, readyz, start_up
from .proctree import descendants, survivors

CHANGE = {"operational": {"batch_size": 250, "gap_check_interval_hours": 1}}


@pytest.fixture
def workspace() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are 0700, and as root PostgreSQL runs as `postgres`.
    path = Path(tempfile.mkdtemp(prefix="ledger-up-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def post_with_curl(url: str, body: Mapping[str, object], reason: str) -> dict[str, object]:
    """POST the way the README says (curl), or with aiohttp where curl is not installed."""
    if shutil.which("curl"):
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--fail-with-body", "-X", "POST", url, "-H", "Content-Type: application/json",
            "-H", f"X-Change-Reason: {reason}", "-d", json.dumps(body), stdout=subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, out
        return json.loads(out)  # type: ignore[no-any-return]
    async with aiohttp.ClientSession() as session, session.post(
        url, json=body, headers={"X-Change-Reason": reason}
    ) as resp:
        assert resp.status in (200, 201, 202), await resp.text()
        return await resp.json()  # type: ignore[no-any-return]


async def get_json(url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()  # type: ignore[no-any-return]


async def read_until(stream: asyncio.StreamReader, needle: str, timeout: float, seen: list[str]) -> str:
    """Lines of a child's stdout until one contains ``needle`` (each read has a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no line with {needle!r} within {timeout}s; got {seen}")
        raw = await asyncio.wait_for(stream.readline(), remaining)
        if not raw:
            raise AssertionError(f"stream ended before a line with {needle!r}; got {seen}")
        line = raw.decode().rstrip()
        seen.append(line)
        if needle in line:
            return line


def child_running(up: UpProcess, module: str) -> int:
    """The pid of `python -m <module>` under `up`."""
    for pid in descendants(up.proc.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-m" in argv and argv[argv.index(b"-m") + 1] == module.encode():
            return pid
    raise AssertionError(f"no `python -m {module}` under `up`")


def stop_and_check_no_survivor(up: UpProcess, sig: signal.Signals = signal.SIGINT) -> None:
    tree = descendants(up.proc.pid)
    names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in tree if Path(f"/proc/{pid}/comm").exists()}
    assert {"nats-server", "postgres"} <= names, f"unexpected process tree: {names}"
    assert sum(1 for n in names if n.startswith("python")) >= 1, names
    code = up.interrupt(sig=sig)
    assert code == 0, up.output()[-3000:]
    left = survivors(tree)
    assert not left, f"processes of `up` survived Ctrl-C: {left}\n{up.output()[-2000:]}"


async def test_up_serves_watches_stops_cleanly_and_keeps_its_data(workspace: Path) -> None:
    data_dir = workspace / "data"
    api_port = free_port()
    env = clean_env(API_PORT=str(api_port), LEDGER_NATS_PORT=str(free_port()),
                    LEDGER_PG_PORT=str(free_port()), LEDGER_DATA_DIR=str(data_dir))
    api = f"http://127.0.0.1:{api_port}"
    config_url = f"{api}/api/v1/config/{EXAMPLE_SERVICE}"

    up = start_up(env, workspace / "up.log")
    try:
        await up.wait_ready()
        seeded = await get_json(config_url)
        assert seeded["version"] == 1 and seeded["config"]["operational"]["batch_size"] == 100  # type: ignore[index]
        assert "AUTHENTICATION IS OFF" in up.output()

        watch = await asyncio.create_subprocess_exec(
            *cli_argv(), "watch", EXAMPLE_SERVICE, "--url", api, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert watch.stdout is not None
            seen: list[str] = []
            await read_until(watch.stdout, f"{EXAMPLE_SERVICE} v1", 30, seen)  # the current state first
            posted = await post_with_curl(config_url, CHANGE, "end-to-end test")
            assert posted["version"] == 2
            line = await read_until(watch.stdout, f"{EXAMPLE_SERVICE} v2", 30, seen)
            assert "/operational/batch_size: 100 → 250" in line and "end-to-end test" in line
        finally:
            watch.terminate()
            await watch.wait()

        # a crashed child is restarted (with backoff) and the stack is ready again
        api_pid = child_running(up, "api")
        os.kill(api_pid, signal.SIGKILL)
        await wait_for(lambda: "api exited with code -9; restarting" in up.output(), timeout=30,
                       what="the supervisor to notice the crash")
        await wait_for(lambda: readyz(api), timeout=60, interval=0.2, what="the restarted API")
        assert child_running(up, "api") != api_pid

        current = await get_json(config_url)
        assert current["version"] == 2 and current["config"] == CHANGE
        stop_and_check_no_survivor(up)
        assert "stopped cleanly" in up.output()
    finally:
        if up.proc.poll() is None:
            up.interrupt()

    again = start_up(env, workspace / "up-again.log")
    try:
        await again.wait_ready()
        kept = await get_json(config_url)
        assert kept["version"] == 2 and kept["config"] == CHANGE  # kept, and not seeded again
        assert "already there" in again.output()
        stop_and_check_no_survivor(again, signal.SIGTERM)  # what a service manager sends
        assert "(SIGTERM)" in again.output() and "stopped cleanly" in again.output()
    finally:
        if again.proc.poll() is None:
            again.interrupt()
