"""The load client of ``bench.bench_etcd``: one process per measurement, the same code for etcd
and for Config Ledger (light imports: aiohttp and orjson only).

    python -m bench.etcd_load <etcd|ledger> <url> <seq|conc|get|watch> <seconds>

prints one JSON object: ``per_s`` (seq, conc, get) or the write → watcher latencies (watch).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
import time
from typing import Any

import aiohttp
import orjson

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"  # the token bench_api gives the API
WRITERS = 50
WATCH_WRITES = 150
WATCH_PACE_S = 0.01
DOC = {"operational": {"batch_size": 200, "gap_check_interval_hours": 1, "max_retries": 3},
       "features": {"enable_verification": True, "enable_auto_backfill": True}}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


# --- the two systems, as one client sees them ---------------------------------------------------


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


class Target:
    """How the load client talks to one system."""

    def __init__(self, system: str, url: str) -> None:
        self.system, self.url = system, url
        self.headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if system == "ledger" else {}

    def key(self, name: str) -> str:
        return f"bench-{name}"

    async def put(self, session: aiohttp.ClientSession, name: str, n: int) -> None:
        doc = {**DOC, "n": n}
        if self.system == "etcd":
            body = {"key": _b64(f"/config/{self.key(name)}"), "value": _b64(orjson.dumps(doc))}
            async with session.post(f"{self.url}/v3/kv/put", data=orjson.dumps(body)) as r:
                await r.read()
        else:
            async with session.post(
                f"{self.url}/api/v1/config/{self.key(name)}", data=orjson.dumps(doc),
                headers={"Content-Type": "application/json"},
            ) as r:
                await r.read()
        if r.status != 200:
            raise RuntimeError(f"{self.system} write answered {r.status}")

    async def get(self, session: aiohttp.ClientSession, name: str) -> None:
        if self.system == "etcd":
            body = {"key": _b64(f"/config/{self.key(name)}")}
            async with session.post(f"{self.url}/v3/kv/range", data=orjson.dumps(body)) as r:
                await r.read()
        else:
            async with session.get(f"{self.url}/api/v1/config/{self.key(name)}") as r:
                await r.read()
        if r.status != 200:
            raise RuntimeError(f"{self.system} read answered {r.status}")

    async def watch(self, session: aiohttp.ClientSession, name: str, arrived: dict[int, float],
                    got: asyncio.Event, ready: asyncio.Event) -> None:
        """Record when each write ``n`` reaches a watcher."""
        if self.system == "etcd":
            req = {"create_request": {"key": _b64(f"/config/{self.key(name)}")}}
            async with session.post(f"{self.url}/v3/watch", data=orjson.dumps(req)) as resp:
                async for line in resp.content:
                    now = time.perf_counter()
                    result = orjson.loads(line).get("result", {})
                    if result.get("created"):
                        ready.set()
                    for ev in result.get("events", ()):
                        arrived[orjson.loads(base64.b64decode(ev["kv"]["value"]))["n"]] = now
                        got.set()
        else:
            async with session.get(f"{self.url}/api/v1/config/{self.key(name)}/watch") as resp:
                async for line in resp.content:
                    if line.startswith(b"retry:"):
                        ready.set()
                    elif line.startswith(b"data: "):
                        now = time.perf_counter()
                        arrived[orjson.loads(line[6:])["config"]["n"]] = now
                        got.set()


async def _run_load(system: str, url: str, op: str, seconds: float) -> dict[str, Any]:
    target = Target(system, url)
    conns = 1 if op in ("seq", "watch") else WRITERS
    connector = aiohttp.TCPConnector(limit=conns + 2)
    async with aiohttp.ClientSession(connector=connector, headers=target.headers) as session:
        if op == "watch":
            return await _watch_latency(target, session)
        await target.put(session, "get", 0)  # the key read by "get" (and a warm connection)
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            nonlocal done
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                if op == "get":
                    await target.get(session, "get")
                else:
                    await target.put(session, f"w{i}", n)
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(conns)))
        return {"per_s": round(done / (time.perf_counter() - t0), 1), "requests": done}


async def _watch_latency(target: Target, session: aiohttp.ClientSession) -> dict[str, Any]:
    arrived: dict[int, float] = {}
    got, ready = asyncio.Event(), asyncio.Event()
    await target.put(session, "watch", 0)
    watcher = asyncio.create_task(target.watch(session, "watch", arrived, got, ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        from_send, from_answer = [], []
        for n in range(1, WATCH_WRITES + 1):
            t0 = time.perf_counter()
            await target.put(session, "watch", n)
            t1 = time.perf_counter()
            while n not in arrived:
                await asyncio.wait_for(got.wait(), 10)
                got.clear()
            from_send.append(arrived[n] - t0)
            from_answer.append(max(0.0, arrived[n] - t1))
            await asyncio.sleep(WATCH_PACE_S)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await watcher
    return {
        "p50_ms": round(percentile(from_send, 50) * 1000, 3),
        "p99_ms": round(percentile(from_send, 99) * 1000, 3),
        "after_answer_p50_ms": round(percentile(from_answer, 50) * 1000, 3),
        "after_answer_p99_ms": round(percentile(from_answer, 99) * 1000, 3),
        "writes": len(from_send),
    }




if __name__ == "__main__":
    result = asyncio.run(_run_load(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
    print(orjson.dumps(result).decode())
