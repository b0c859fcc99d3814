"""The reference document's calls, as written, against ``python -m api`` on a real port."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from ops.embedded import REPO_ROOT, free_port
from tests.support.waiting import wait_for

from .helpers import ADMIN, Stack, post

REFERENCE_BODY = """{
    "operational": {
      "batch_size": 200,
      "gap_check_interval_hours": 1
    }
  }"""


async def _listening(url: str) -> bool:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/healthz") as r:
        return r.status == 200


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)


@dataclass
class DevApi:
    url: str
    log: Path
    proc: subprocess.Popen[bytes]

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture
async def dev_api(stack: Stack, tmp_path: Path) -> AsyncIterator[DevApi]:
    """``python -m api`` with API_AUTH=off (the embedded dev stack's mode) on a free port."""
    port = free_port()
    log = tmp_path / "api.log"
    env = {**stack.env, "API_AUTH": "off", "API_PORT": str(port), "API_HOST": "127.0.0.1"}
    dev = DevApi(f"http://127.0.0.1:{port}", log, _spawn([sys.executable, "-m", "api"], env, log))
    try:
        await wait_for(lambda: _listening(dev.url), timeout=20, what="python -m api to listen")
        yield dev
    finally:
        code = await dev.stop()
        assert code == 0, log.read_text()[-2000:]


async def _curl(*args: str) -> tuple[int, dict]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "-w", "\n%{http_code}", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    body, _, status = out.decode().rpartition("\n")
    return int(status), json.loads(body)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_reference_curl_post_then_get_and_history(dev_api: DevApi, svc: str) -> None:
    url, log = dev_api.url, dev_api.log
    # The hot-reload example, verbatim (host aside), with no Authorization header.
    status, body = await _curl(
        "-X", "POST", f"{url}/api/v1/config/{svc}", "-H", "Content-Type: application/json", "-d", REFERENCE_BODY
    )
    assert status == 200, body
    assert body["status"] == "success" and body["message"] == "Config updated and broadcasted"
    assert body["version"] == 1 and isinstance(body["projected"], bool)
    status, body = await _curl(
        "-X", "POST", f"{url}/api/v1/config/{svc}", "-H", "Content-Type: application/json",
        "-H", "X-Change-Reason: raise batch for backfill",
        "-d", '{"operational": {"batch_size": 300, "gap_check_interval_hours": 1}}',
    )
    assert (status, body["version"]) == (200, 2)

    status, current = await _curl(f"{url}/api/v1/config/{svc}")
    assert status == 200
    assert current["config"]["operational"]["batch_size"] == 300 and current["version"] == 2

    status, hist = await _curl(f"{url}/api/v1/config/history/{svc}")
    assert status == 200
    assert [(v["version"], v["actor"], v["reason"]) for v in hist["versions"]] == [
        (2, "dev", "raise batch for backfill"),
        (1, "dev", ""),
    ]
    assert hist["versions"][1]["config"]["operational"]["batch_size"] == 200

    # The troubleshooting section's 404, word for word.
    status, body = await _curl(f"{url}/api/v1/config/my-service-{svc}")
    assert status == 404
    assert body["error"]["message"] == f"Config not found for service: my-service-{svc}"

    text = log.read_text()
    assert "WARNING" in text and "API_AUTH=off: AUTHENTICATION IS DISABLED" in text


async def test_post_then_get_shows_new_batch_size_with_auth(api, svc: str) -> None:
    first = await post(api, svc, {"operational": {"batch_size": 100, "gap_check_interval_hours": 1}})
    assert first.status == 200
    resp = await api.post(
        f"/api/v1/config/{svc}",
        data=REFERENCE_BODY,
        headers={**ADMIN, "Content-Type": "application/json", "X-Change-Reason": "backfill"},
    )
    body = await resp.json()
    assert resp.status == 200 and body["version"] == 2 and body["status"] == "success"
    assert resp.headers["ETag"] == '"2"'

    got = await api.get(f"/api/v1/config/{svc}", headers=ADMIN)
    doc = await got.json()
    assert got.status == 200 and got.headers["ETag"] == '"2"'
    assert doc["config"] == {"operational": {"batch_size": 200, "gap_check_interval_hours": 1}}
    assert doc["service_name"] == svc and doc["version"] == 2 and doc["actor"] == "alice"

    hist = await (await api.get(f"/api/v1/config/history/{svc}", headers=ADMIN)).json()
    assert [(v["version"], v["actor"], v["reason"], v["kind"]) for v in hist["versions"]] == [
        (2, "alice", "backfill", "replaced"),
        (1, "alice", "", "replaced"),
    ]


async def test_sigterm_ends_open_watches_and_exits_cleanly(dev_api: DevApi, svc: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{dev_api.url}/api/v1/config/{svc}", json={"a": 1}) as r:
            assert r.status == 200
        async with session.get(f"{dev_api.url}/api/v1/config/{svc}/watch") as watch:
            assert watch.status == 200
            first = await watch.content.readuntil(b"\n\n")  # "retry: 1000"
            assert first.startswith(b"retry:")
            code_task = asyncio.create_task(dev_api.stop())
            rest = await asyncio.wait_for(watch.content.read(), 15)  # the stream ends: EOF
            assert b"id: 1" in rest
            assert await code_task == 0


def test_main_exit_codes_for_bad_settings_and_unreachable_nats() -> None:
    from api.__main__ import EXIT_UNAVAILABLE, EXIT_USAGE, main

    assert main(environ={"API_PORT": "not-a-port", "API_AUTH": "off"}) == EXIT_USAGE
    assert main(environ={"API_AUTH": "on"}) == EXIT_USAGE  # auth on, no tokens
    assert main(environ={"API_AUTH": "off"}) == EXIT_USAGE  # no DATABASE_URL
    unreachable = {"API_AUTH": "off", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    assert main(environ={**unreachable, "NATS_URL": f"nats://127.0.0.1:{free_port()}"}) == EXIT_UNAVAILABLE
