"""Scenario 9: the hub is down (NATS stopped, no API) — clients start from LKG or defaults.

A client that saw the config before writes its last-known-good file; with the hub down a new
client starts from it (same version, same document). A corrupt LKG (bad checksum, truncated,
another service's) is ignored: the client starts on its safe defaults and does not crash. When
NATS comes back, every client converges to the stream, and the LKG files are rewritten.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, LedgerSettings, Replace
from tests.support.waiting import wait_for

from .conftest import SCALE, FaultReport
from .procs import Proc, ProcGroup
from .scenario import convergence, markers_to_versions, wait_client_version
from .stack import Stack

SERVICE = "hubless"
DEFAULTS = {"w": "defaults", "operational": {"batch_size": 10}}


def ready_line(proc: Proc) -> dict[str, Any] | None:
    for line in proc.snapshot():
        if line.get("event") in ("ready", "error"):
            return line
    return None


async def wait_ready(proc: Proc, timeout: float = 30) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        if not proc.running() and ready_line(proc) is None:
            raise AssertionError(f"{proc.name} exited before init_async returned:\n{proc.log_tail()}")
        return ready_line(proc)

    line = await wait_for(probe, timeout=timeout, what=f"{proc.name} to finish init_async")
    return line


def lkg_version(path: Path) -> int | None:
    try:
        return json.loads(path.read_bytes()).get("version")
    except (OSError, ValueError):
        return None


async def seed_lkg(stack: Stack, procs: ProcGroup, lkg: Path) -> None:
    """Three versions in the stream, and a client that saw them and wrote its LKG file."""
    async with Ledger.connect(settings=LedgerSettings(nats_url=stack.nats.url)) as led:
        for n in range(3):
            await led.append(SERVICE, Replace({"w": f"v{n + 1}", "n": n}), actor="t", reason="seed")
    seen = procs.client(SERVICE, stack.nats.url, name="client-seed", lkg_path=lkg)
    await wait_client_version(seen, SERVICE, stack, timeout=30, what="the seeding client")
    await wait_for(lambda: lkg_version(lkg) == 3, timeout=10, what="the LKG file to hold version 3")
    seen.terminate()
    assert seen.returncode == 0, seen.log_tail()


@pytest.mark.timeout(120 + 20 * SCALE)
async def test_hub_down_clients_start_from_lkg_or_defaults(
    stack: Stack, procs: ProcGroup, fault_report: FaultReport, tmp_path: Path
) -> None:
    settings = LedgerSettings(nats_url=stack.nats.url)
    lkg = tmp_path / "lkg" / f"{SERVICE}.json"
    await seed_lkg(stack, procs, lkg)

    # Corrupt copies of the good file.
    bad_sum = tmp_path / "lkg" / "bad-checksum.json"
    doc = json.loads(lkg.read_bytes())
    doc["config"]["n"] = 999  # edited: the checksum no longer matches
    bad_sum.write_text(json.dumps(doc))
    truncated = tmp_path / "lkg" / "truncated.json"
    truncated.write_bytes(lkg.read_bytes()[: len(lkg.read_bytes()) // 2])
    foreign = tmp_path / "lkg" / "foreign.json"
    shutil.copy(lkg, foreign)
    other = "someone-else"

    stack.nats.stop()  # the hub is down: NATS stopped, no API anywhere
    started = time.monotonic()
    from_lkg = procs.client(SERVICE, stack.nats.url, name="client-lkg", lkg_path=lkg)
    lkg_copy = tmp_path / "lkg" / "copy.json"
    shutil.copy(lkg, lkg_copy)
    # The LKG ranks above the safe defaults (a regression test: it once did not).
    lkg_and_defaults = procs.client(SERVICE, stack.nats.url, name="client-lkg-defaults",
                                    lkg_path=lkg_copy, safe_defaults=DEFAULTS)
    corrupt = [
        procs.client(SERVICE, stack.nats.url, name="client-bad-checksum", lkg_path=bad_sum,
                     safe_defaults=DEFAULTS),
        procs.client(SERVICE, stack.nats.url, name="client-truncated", lkg_path=truncated,
                     safe_defaults=DEFAULTS),
        procs.client(other, stack.nats.url, name="client-foreign", lkg_path=foreign,
                     safe_defaults=DEFAULTS),
    ]
    nothing = procs.client(SERVICE, stack.nats.url, name="client-nothing")

    line = await wait_ready(from_lkg)
    fault_report.set(lkg_start_s=round(line["t"] - started, 3))
    assert (line.get("source"), line.get("version")) == ("lkg", 3), line
    assert line.get("config") == {"w": "v3", "n": 2}, line
    line = await wait_ready(lkg_and_defaults)
    assert (line.get("source"), line.get("version"), line.get("config")) == (
        "lkg", 3, {"w": "v3", "n": 2}), line
    for proc in corrupt:
        line = await wait_ready(proc)
        assert line.get("source") == "defaults" and line.get("config") == DEFAULTS, (proc.name, line)
        assert proc.running(), f"{proc.name} crashed on a corrupt LKG file:\n{proc.log_tail()}"
    line = await wait_ready(nothing)
    assert line.get("version") is None and "Config not found" in json.dumps(line), line
    assert nothing.running(), nothing.log_tail()

    # The hub comes back: everyone converges to the stream.
    stack.nats.start()
    back = time.monotonic()
    async with Ledger.connect(settings=settings) as led:
        await led.append(SERVICE, Replace({"w": "v4", "n": 3}), actor="t", reason="after outage")
    events = await stack.stream_events()
    versions = markers_to_versions(events)
    for proc in [from_lkg, lkg_and_defaults, *corrupt[:2], nothing]:
        await wait_client_version(proc, SERVICE, stack, timeout=30, what=f"{proc.name} to reach v4")
        took = convergence(proc, SERVICE, 4, back, versions)
        fault_report.max("max_convergence_s", took)

        def on_stream(p: Proc = proc) -> bool:
            ticks = [ln for ln in p.snapshot() if ln.get("event") == "tick"]
            return bool(ticks) and (ticks[-1].get("source"), ticks[-1].get("version")) == ("stream", 4)

        await wait_for(on_stream, timeout=10, what=f"{proc.name} to report source=stream version 4")
    for path in (lkg, bad_sum, truncated):
        await wait_for(lambda p=path: lkg_version(p) == 4, timeout=10,  # type: ignore[misc]
                       what=f"{path.name} to be rewritten with version 4")
    # The client of the other service never took the foreign file's config.
    foreign_lines = [ln for ln in corrupt[2].snapshot() if ln.get("event") in ("ready", "update", "tick")]
    assert all(ln.get("source") != "lkg" for ln in foreign_lines), foreign_lines[:3]
    fault_report.set(clients=7)

