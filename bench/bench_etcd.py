"""Config Ledger against etcd, through the same HTTP client, the same document, rounds alternated.

``python -m bench etcd`` (also part of ``make bench``). It starts a private etcd (``etcd`` on PATH —
Debian: ``apt-get install etcd-server`` — or ``ETCD_BIN=/path/to/etcd``; without one it skips with a
message) with its v3 JSON gateway, and the embedded stack (private nats-server with the shipped
``sync_interval: always``, PostgreSQL, the projector and ``BENCH_API_WORKERS`` API processes on one
port, auth on), then measures side by side, each figure in ``BENCH_ROUNDS`` rounds (default 2)
whose order alternates (etcd first, then the ledger first, ...) so that noise from the shared
machine hits both alike; the figure is the median over rounds:

1. sequential writes, one client: etcd ``PUT`` vs ``POST /api/v1/config/{service}``;
2. 50 concurrent writers on 50 keys / services;
3. write → watcher notified (paced writes, one watcher): etcd ``/v3/watch`` vs the SSE watch;
   measured from sending the write (``p50``/``p99``) and from its answer (``after_answer``);
4. GET current, 50 connections: etcd range read vs ``GET /api/v1/config/{service}``.

Beside the writes (1, 2), the floor of an HTTP write on this machine is measured in the same
rounds: ``bench/bare_write.py``, a bare aiohttp handler that only parses and CAS-publishes to the
same nats-server (no auth, validation, hashing, follower): how far the ledger is from the floor,
and how far the floor itself is from etcd.

The load comes from one aiohttp client process per measurement (``bench/etcd_load.py``), the same
code for both systems. Results: ``bench/results/etcd.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from ledger import Ledger, LedgerSettings
from ledger.streams import apply_streams, load_streams_file
from ops.embedded import REPO_ROOT, free_port
from projector import migrate

from .bench_api import spawn, wait_http
from .common import private_nats, private_pg, write_results
from .etcd_load import ADMIN_TOKEN, WATCH_PACE_S, WATCH_WRITES, WRITERS

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
WORKERS = int(os.environ.get("BENCH_API_WORKERS", "1"))

HOW_TO_GET_ETCD = (
    "etcd not found: install it (Debian/Ubuntu: apt-get install -y etcd-server) or set ETCD_BIN "
    "to an etcd 3.4+ binary; skipping the etcd comparison"
)


def etcd_binary() -> str | None:
    found = os.environ.get("ETCD_BIN") or shutil.which("etcd")
    return found if found and os.access(found, os.X_OK) else None


async def load(system: str, url: str, op: str, seconds: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.etcd_load", system, url, op, str(seconds),
        stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load client for {system} {op} failed")
    return json.loads(out.decode().strip().splitlines()[-1])


# --- servers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def private_etcd(binary: str, workdir: Path):  # type: ignore[no-untyped-def]
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    cmd = [
        binary, "--name", "bench", "--data-dir", str(workdir / "etcd"),
        "--listen-client-urls", url, "--advertise-client-urls", url,
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--log-level", "error",
    ]
    with spawn(cmd, dict(os.environ), workdir / "etcd.log") as proc:
        yield url, proc


async def wait_etcd(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                text = await asyncio.to_thread(log.read_text, errors="replace")
                raise RuntimeError(f"etcd exited: {text[-1500:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{url}/health") as resp:
                    if resp.status == 200 and orjson.loads(await resp.read()).get("health") == "true":
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"etcd did not become healthy in {timeout}s")


# --- main ---------------------------------------------------------------------------------------

FIGURES = [  # (name, op, what the figure is, higher is better)
    ("sequential_writes", "seq", "per_s", True),
    ("concurrent_writes_50x50", "conc", "per_s", True),
    ("write_to_watcher", "watch", "p50_ms", False),
    ("get_current_50_conns", "get", "per_s", True),
]


def _median(rounds: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 3)


WRITES = ("seq", "conc")  # the figures the bare write handler (the floor) is measured for


async def measure(etcd_url: str, ledger_url: str, floor_url: str) -> dict[str, Any]:
    urls = {"etcd": etcd_url, "ledger": ledger_url, "floor": floor_url}
    out: dict[str, Any] = {}
    for name, op, _, _ in FIGURES:
        systems = ("etcd", "ledger", "floor") if op in WRITES else ("etcd", "ledger")
        rounds: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
        for r in range(ROUNDS):
            order = systems if r % 2 == 0 else systems[::-1]
            for system in order:
                # The floor speaks the ledger's HTTP interface.
                rounds[system].append(await load("ledger" if system == "floor" else system, urls[system], op, SECONDS))
        keys = rounds["etcd"][0].keys() - {"requests", "writes"}
        out[name] = {
            system: {**{k: _median(rs, k) for k in keys}, "rounds": rs} for system, rs in rounds.items()
        }
    return out


def _report(results: dict[str, Any]) -> None:
    print(f"{'figure':<34} {'etcd':>14} {'Config Ledger':>16} {'ratio':>8}   floor: bare handler (ratio to etcd)")
    for name, _, key, higher in FIGURES:
        e, c = results[name]["etcd"], results[name]["ledger"]
        if higher:
            ratio = c[key] / e[key]
            floor = results[name].get("floor")
            beside = f"   {floor[key]:>10,.0f}/s ({floor[key] / e[key]:.2f})" if floor else ""
            print(f"{name:<34} {e[key]:>12,.0f}/s {c[key]:>14,.0f}/s {ratio:>8.2f}{beside}")
        else:
            for k in ("p50_ms", "p99_ms", "after_answer_p50_ms", "after_answer_p99_ms"):
                ratio = c[k] / e[k] if e[k] else float("nan")
                print(f"{name + ' ' + k:<34} {e[k]:>11.2f} ms {c[k]:>13.2f} ms {ratio:>8.2f} (lower is better)")
        results[name]["ratio"] = round(ratio, 3) if higher else {
            k: round(c[k] / e[k], 3) if e[k] else None for k in ("p50_ms", "p99_ms")
        }


async def main() -> dict[str, Any]:
    binary = etcd_binary()
    if binary is None:
        print(f"   {HOW_TO_GET_ETCD}")
        return {"skipped": HOW_TO_GET_ETCD}
    with (
        tempfile.TemporaryDirectory(prefix="bench-etcd-") as tmp,
        private_nats() as nats_srv,
        private_pg() as pg,
    ):
        work = Path(tmp)
        settings = LedgerSettings(nats_url=nats_srv.url)
        async with Ledger.connect(settings=settings) as led:
            await apply_streams(led.js, load_streams_file(REPO_ROOT / "streams.yaml"))
        conn = await asyncpg.connect(pg.url())
        try:
            await migrate(conn)
        finally:
            await conn.close()
        port = free_port()
        env = {
            **os.environ,
            "NATS_URL": settings.nats_url,
            "DATABASE_URL": pg.url(),
            "API_PORT": str(port),
            "API_WORKERS": str(WORKERS),
            "API_TOKENS": json.dumps([{"token": ADMIN_TOKEN, "identity": "bench", "role": "admin"}]),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
        }
        ledger_url = f"http://127.0.0.1:{port}"
        floor_port = free_port()
        floor_url = f"http://127.0.0.1:{floor_port}"
        with (
            private_etcd(binary, work) as (etcd_url, etcd_proc),
            spawn([sys.executable, "-m", "projector", "run"], env, work / "projector.log"),
            spawn([sys.executable, "-m", "api"], env, work / "api.log") as api_proc,
            spawn([sys.executable, "-m", "bench.bare_write", settings.nats_url, str(floor_port)], env,
                  work / "floor.log") as floor_proc,
        ):
            await wait_etcd(etcd_url, etcd_proc, work / "etcd.log")
            await wait_http(f"{ledger_url}/healthz", api_proc, work / "api.log")
            await wait_http(f"{floor_url}/healthz", floor_proc, work / "floor.log")
            ran = await asyncio.to_thread(subprocess.run, [binary, "--version"], capture_output=True, text=True)
            version = ran.stdout.split("\n")[0]
            results = await measure(etcd_url, ledger_url, floor_url)
    _report(results)
    data = {"etcd": version, "api_workers": WORKERS, "rounds": ROUNDS, "seconds_per_round": SECONDS,
            "writers": WRITERS, "watch_writes": WATCH_WRITES, "watch_pace_ms": WATCH_PACE_S * 1000,
            "load_client": "aiohttp, one process per measurement (same code for both)",
            "nats_sync_interval": "always", "results": results}
    write_results("etcd", data)
    return data


if __name__ == "__main__":
    asyncio.run(main())
