"""The API follows the stream: read-your-writes across API processes, SSE resumed from the stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from ops.embedded import REPO_ROOT, free_port
from tests.support.waiting import wait_for

from .helpers import ADMIN, TOKENS_YAML, Stack, post
from .test_sse import take


async def _ready(url: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError, OSError):
        async with aiohttp.ClientSession() as s, s.get(f"{url}/healthz") as r:
            return r.status == 200
    return False


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "api"], env=env, cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
async def api_process(stack: Stack, tmp_path: Path) -> AsyncIterator[Callable[[], asyncio.Future[tuple[str, subprocess.Popen[bytes]]]]]:
    """Start real ``python -m api`` processes on the stack (auth on, the test tokens)."""
    procs: list[subprocess.Popen[bytes]] = []

    async def start() -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        env = {**stack.env, "API_PORT": str(port), "API_TOKENS": TOKENS_YAML, "LOG_LEVEL": "WARNING"}
        proc = await asyncio.to_thread(_spawn, env, tmp_path / f"api-{port}.log")
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        await wait_for(lambda: _ready(url), timeout=30, what="python -m api to listen")
        return url, proc

    yield start  # type: ignore[misc]
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_read_your_writes_across_two_api_processes(api_process, svc: str) -> None:
    """A reader presenting a version it has seen (ETag or min_version) never gets an older one
    from another API process, even one whose follower has not seen that version yet."""
    (a_url, _), (b_url, b_proc) = await api_process(), await api_process()
    services = [f"{svc}-{i}" for i in range(20)]
    sent = 0

    async def on_sent(*_: object) -> None:
        nonlocal sent
        sent += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_sent)
    async with aiohttp.ClientSession(headers=ADMIN) as http, aiohttp.ClientSession(
        headers=ADMIN, trace_configs=[trace]
    ) as to_b:
        for name in services:
            async with http.post(f"{a_url}/api/v1/config/{name}", json={"v": 1}) as r:
                assert r.status == 200
        # Open one connection to B per reader (so that the reads below can be sent while B is
        # frozen), and let B's follower see version 1 everywhere.
        async def v1(name: str) -> int:
            async with to_b.get(f"{b_url}/api/v1/config/{name}", params={"min_version": "1"}) as r:
                return int((await r.json())["version"])

        assert await asyncio.gather(*(v1(name) for name in services)) == [1] * len(services)
        # B is frozen while A writes version 2 of every service ...
        os.kill(b_proc.pid, signal.SIGSTOP)
        try:
            etags = {}
            for name in services:
                async with http.post(f"{a_url}/api/v1/config/{name}", json={"v": 2}) as r:
                    assert r.status == 200
                    etags[name] = r.headers["ETag"]
                async with http.get(f"{a_url}/api/v1/config/{name}") as r:  # read-your-writes on A
                    assert (await r.json())["version"] == 2

            # ... and B finds the reads waiting beside the stream's deliveries when it wakes.
            async def read(name: str, i: int) -> tuple[int, int]:
                if i % 2:
                    async with to_b.get(f"{b_url}/api/v1/config/{name}", headers={"If-None-Match": etags[name]}) as r:
                        return r.status, 2 if r.status == 304 else (await r.json())["version"]
                async with to_b.get(f"{b_url}/api/v1/config/{name}", params={"min_version": "2"}) as r:
                    return r.status, (await r.json())["version"]

            sent = 0
            reads = asyncio.gather(*(read(name, i) for i, name in enumerate(services)))
            await wait_for(lambda: sent == len(services), timeout=10, what="the reads to be sent to B")
        finally:
            os.kill(b_proc.pid, signal.SIGCONT)
        answers = await reads
    assert all(status in (200, 304) and version == 2 for status, version in answers), answers


async def test_sse_resume_is_gap_free_from_the_stream_with_the_projector_stopped(
    stack: Stack, make_client, svc: str
) -> None:
    """Resuming further back than the follower keeps in memory reads the stream itself."""
    api = await make_client(stack, follow_history=3, write_wait_ms=100)
    await post(api, svc, {"n": 1})
    assert stack.projector is not None
    os.kill(stack.projector.pid, signal.SIGSTOP)
    try:
        for n in range(2, 11):
            assert (await post(api, svc, {"n": n})).status == 200
        async with api.get(f"/api/v1/config/{svc}/watch", headers={**ADMIN, "Last-Event-ID": "1"}) as resp:
            got = await take(resp, 9)
            assert [i for _, i, _ in got] == list(range(2, 11))
            assert [d["config"] for _, _, d in got] == [{"n": n} for n in range(2, 11)]
            assert got[0][2]["diff"]["changed"] == [{"path": "/n", "from": 1, "to": 2}]
            await post(api, svc, {"n": 11})
            assert [i for _, i, _ in await take(resp, 1)] == [11]
    finally:
        os.kill(stack.projector.pid, signal.SIGCONT)
