"""The fleet commands (ops/cli_fleet.py) against `config-ledger up --auth` (which also runs the
rollout controller): instances as a table / TSV / JSON, rollout start|status|promote|pause|abort,
schedule create|cancel, and their user errors.

``run`` starts the real console script in a subprocess (piped, or on a pseudo-terminal); ``inproc``
calls the same ``main`` in this process (``conftest.run_cli``), for the many steps between, since
a console script takes seconds to start on a loaded machine."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from ops.embedded import REPO_ROOT
from tests.support.waiting import wait_for

from .conftest import RunningStack, clean_env, cli_argv, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def service() -> str:
    return f"fleet-{uuid.uuid4().hex[:10]}"


def run(stack: RunningStack, *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """The console script in a subprocess, stdout piped."""
    return subprocess.run([*cli_argv(), *argv], env=clean_env(**stack.env()), input=stdin.decode(),
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


async def inproc(stack: RunningStack, *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """The same ``main`` in this process (on a worker thread: it runs its own event loop)."""
    result = await asyncio.to_thread(run_cli, *argv, env=stack.env(), stdin=stdin)
    return subprocess.CompletedProcess(list(argv), result.code, result.out, result.err)


def run_on_a_terminal(stack: RunningStack, *argv: str) -> tuple[int, list[str]]:
    """The console script with stdout on a pseudo-terminal (200 columns wide): its lines."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([*cli_argv(), *argv], env=clean_env(**stack.env()), stdout=slave,
                              stderr=subprocess.PIPE, timeout=60, cwd=REPO_ROOT)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode(errors="replace")).replace("\r", "")
    return proc.returncode, [line for line in text.split("\n") if line.strip()]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in result.stderr, result.stderr


async def ack(stack: RunningStack, service: str, instance: str, **body: Any) -> None:
    headers = {"Authorization": f"Bearer {stack.token}"}
    async with aiohttp.ClientSession() as session, session.post(
        f"{stack.api_url}/api/v1/config/{service}/instances/{instance}", json=body, headers=headers
    ) as resp:
        assert resp.status == 202, await resp.text()


async def test_instances_as_a_table_tsv_and_json(stack: RunningStack, service: str) -> None:
    ok(await inproc(stack, "set", service, "-", "-m", "base", stdin=b'{"limit": 1}'))
    ok(await inproc(stack, "patch", service, '{"limit": 2}', "-m", "target"))
    long_id = "worker-" + "x" * 100
    await ack(stack, service, "web-1", labels={"zone": "a", "canary": "true"}, version=2, status="applied")
    await ack(stack, service, "web-2", labels={"zone": "b"}, version=1, status="applied")
    await ack(stack, service, long_id, labels={f"label{i}": "v" * 40 for i in range(5)}, version=2,
              status="rejected", error="limit 2\tis too high")

    tsv = ok(run(stack, "instances", service)).splitlines()
    assert tsv[0].split("\t") == ["instance", "state", "version", "target", "rollout", "labels", "last_seen",
                                  "error"]
    rows = {line.split("\t")[0]: line.split("\t") for line in tsv[1:]}
    assert set(rows) == {"web-1", "web-2", long_id} and all(len(r) == 8 for r in rows.values())
    assert rows["web-1"][1:4] == ["applied", "2", "base"] and rows["web-1"][5] == "canary=true,zone=a"
    assert rows["web-2"][1] == "behind" and rows[long_id][1] == "rejected"
    assert rows[long_id][7] == "limit 2 is too high"  # a tab in a value never breaks the columns

    body = json.loads(ok(await inproc(stack, "instances", service, "--json")))
    assert body["summary"] == {"target_version": 2, "rollout": None, "instances": 3, "applied": 1,
                               "rejected": 1, "behind": 1}

    code, lines = run_on_a_terminal(stack, "instances", service)
    assert code == 0
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    assert lines[0] == f"{service}: target version 2"
    assert lines[1] == "3 instances: 1 applied, 1 rejected, 1 behind"
    assert lines[2].split() == ["INSTANCE", "STATE", "VER", "TARGET", "LABELS", "SEEN"]
    assert any(line.startswith("web-1") and "applied" in line and "ago" in line for line in lines)

    watched = ok(run(stack, "instances", service, "--watch", "--count", "2", "--interval", "0.1"))
    blocks = watched.strip("\n").split("\n\n")
    assert len(blocks) == 2 and all(len(b.splitlines()) == 4 for b in blocks)


async def test_a_rollout_from_the_command_line(stack: RunningStack, service: str) -> None:
    ok(await inproc(stack, "set", service, "-", "-m", "base", stdin=b'{"limit": 1}'))
    started = json.loads(ok(run(stack, "rollout", "start", service, "--patch", '{"limit": 2}',
                                "--stage", "canary=true", "--stage", "zone=a,50%", "--stage", "100%",
                                "--bake", "3600", "-m", "raise the limit", "--json")))
    rid = started["id"]
    assert started["state"] == "running" and started["base_version"] == 1
    await ack(stack, service, "c1", labels={"canary": "true"}, version=1, rollout=rid, status="applied",
              staged=True)

    status = json.loads(ok(await inproc(stack, "rollout", "status", service, rid, "--json")))
    assert status["stage"] == 0 and status["reason"] == "raise the limit"
    assert [s.get("labels") for s in status["stages"]] == [{"canary": "true"}, {"zone": "a"}, {}]
    assert [s.get("percent") for s in status["stages"]] == [None, 50, 100]
    assert (status["stages"][0]["cohort"], status["stages"][0]["applied"]) == (1, 1)
    human = ok(await inproc(stack, "rollout", "status", service, rid))
    assert f"rollout {rid} of {service}: running, stage 1 of 3" in human and "canary=true" in human

    promoted = ok(await inproc(stack, "rollout", "promote", service, rid))
    assert f"rollout {rid} of {service}: running, stage 2" in promoted
    refused(run(stack, "set", service, "-", stdin=b'{"limit": 9}'), 4, f"rollout {rid}")
    assert "paused" in ok(await inproc(stack, "rollout", "pause", service, rid, "-m", "looking at errors"))
    assert "aborted" in ok(await inproc(stack, "rollout", "abort", service, rid, "-m", "wrong limit"))
    refused(await inproc(stack, "rollout", "abort", service, rid), 4, f"rollout {rid} is aborted")
    final = json.loads(ok(await inproc(stack, "rollout", "status", service, rid, "--json")))
    assert final["state"] == "aborted" and final["outcome"] == "wrong limit"
    assert json.loads(ok(await inproc(stack, "get", service, "--json")))["config"] == {"limit": 1}


async def test_schedules_from_the_command_line(stack: RunningStack, service: str) -> None:
    ok(await inproc(stack, "set", service, "-", "-m", "base", stdin=b'{"limit": 1}'))
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    dropped = json.loads(ok(await inproc(stack, "schedule", "create", service, "--at", later, "--patch", '{"limit": 6}',
                                "--json")))
    assert dropped["state"] == "scheduled"
    assert "cancelled" in ok(await inproc(stack, "schedule", "cancel", service, dropped["id"], "-m", "not needed"))
    refused(await inproc(stack, "schedule", "cancel", service, dropped["id"]), 1, "no pending scheduled change")

    # the controller `up` runs applies a due change
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    kept = ok(await inproc(stack, "schedule", "create", service, "--at", soon, "--patch", '{"limit": 5}',
                           "-m", "night"))
    assert "scheduled for" in kept

    async def applied() -> bool:
        current = json.loads(ok(await inproc(stack, "get", service, "--json")))
        return current["version"] == 2 and current["config"] == {"limit": 5}

    await wait_for(applied, timeout=20, interval=0.3, what="the scheduled change applied by the controller")


async def test_user_errors_are_one_line_with_the_documented_exit_code(stack: RunningStack, service: str) -> None:
    ok(await inproc(stack, "set", service, "-", stdin=b'{"limit": 1}'))
    refused(run(stack, "rollout", "start", service, "--patch", '{"a": 1}', "--stage", "0%"), 2, "--stage")
    refused(await inproc(stack, "rollout", "start", service, "--patch", "[1]", "--stage", "100%"), 2, "--patch")
    refused(await inproc(stack, "rollout", "start", service, "--patch", "{}", "--stage", "100%", "--min-applied", "2"),
            2, "less than or equal to 1")
    refused(await inproc(stack, "rollout", "status", service, "nope"), 1, "no rollout 'nope'")
    refused(await inproc(stack, "schedule", "create", service, "--at", "tomorrow", "--patch", "{}"), 2, "--at")
    refused(await inproc(stack, "schedule", "create", service, "--at", "2020-01-01T00:00:00Z", "--patch", "{}"), 4,
            "not_before must be in the future")
    refused(await inproc(stack, "instances", service, "--count", "2"), 2, "--watch")
    refused(await inproc(stack, "instances", "Bad..Name"), 2, "service")
