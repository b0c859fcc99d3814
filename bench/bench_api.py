"""HTTP API benchmark, each figure beside a baseline measured in the same run.

Private nats-server (shipped config: ``sync_interval: always``) and PostgreSQL in a temp dir, the
projector (``python -m projector run``) and the API (``python -m api``, auth on) as subprocesses
on free ports, and:

1. GET current config, 50 connections (wrk), against a minimal aiohttp JSON handler in its own
   process — target >= 60 % of its req/s;
2. POST throughput, 50 concurrent writers on 50 services (wrk, one connection per thread), counting
   acknowledged writes (200: stored by JetStream; PostgreSQL is not on the write path) — target
   >= 2,000/s; baseline: ``Ledger.append`` from 50 concurrent tasks on 50 services in-process;
3. POST → SSE event latency (paced writes, one watcher) — baseline: raw ``js.publish`` → ordered
   consumer callback, paced the same way.

Run: ``python -m bench.bench_api`` (or ``make bench``). Results: bench/results/api.json.
Without ``wrk`` on PATH the load comes from an aiohttp client in a separate process (slower,
noted in the results).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from nats.js import api as js_api

from ledger import Ledger, LedgerSettings, Replace
from ledger.nats_io import EXPECTED_LAST_SUBJECT_SEQ, MSG_ID
from ledger.streams import StreamsFile, apply_streams, load_streams_file
from ops.embedded import REPO_ROOT, free_port
from projector import migrate

from .common import line, private_nats, private_pg, summary_ms, write_results

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
GET_SERVICE = "bench-get"
WRITERS = 50
DURATION_S = 10
GET_ROUNDS = 5
WARMUP_S = 2
SSE_WRITES = 300
SSE_PACE_S = 0.01
DOC = {"operational": {"batch_size": 200, "gap_check_interval_hours": 1, "max_retries": 3},
       "features": {"enable_verification": True, "enable_auto_backfill": True}}


# --- processes -------------------------------------------------------------------------------


@contextlib.contextmanager
def spawn(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited: {_tail(log)}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


def baseline_server(port: int) -> None:
    """The minimal aiohttp JSON handler the GET figure is compared with."""
    from aiohttp import web

    body = {"service": GET_SERVICE, "version": 1, "config": DOC}

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/api/v1/config/{service}", handler)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- load generation -------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _parse_wrk(text: str) -> dict[str, Any]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    out: dict[str, Any] = {"req_per_s": round(rps, 1)}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        if m:
            out[f"p{pct}_ms"] = round(float(m.group(1)) * _UNITS[m.group(2)], 3)
    m = re.search(r"(\d+) requests in ([\d.]+)(s|m)", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"TIMING ([\d.]+) ([\d.]+)", text)
    if m:
        out["mean_in_ledger_ms"] = float(m.group(1))
    m = re.search(r"RESULT (\d+) (\d+) (\d+)", text)
    if m:
        out["status_200"], out["status_202"], out["status_other"] = map(int, m.groups())
    return out


async def wrk(args: list[str]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "wrk", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {text}")
    return _parse_wrk(text)


_POST_LUA = """
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  path = "/api/v1/config/bench-w" .. id
  n = 0
  ok200 = 0
  ok202 = 0
  other = 0
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer TOKEN"}
end
function request()
  n = n + 1
  return wrk.format("POST", path, headers,
    '{"operational":{"batch_size":' .. n .. ',"gap_check_interval_hours":1},"features":{"x":true}}')
end
function response(status, hdrs, body)
  if status == 200 then ok200 = ok200 + 1
  elseif status == 202 then ok202 = ok202 + 1
  else other = other + 1 end
  local timing = hdrs["Server-Timing"]
  if timing then
    local a = string.match(timing, "append;dur=([%d.]+)")
    if a then
      sum_append = (sum_append or 0) + tonumber(a)
      sum_project = 0
      timed = (timed or 0) + 1
    end
  end
end
function done(summary, latency, requests)
  local a, b, c, sa, sp, n = 0, 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("ok200"); b = b + t:get("ok202"); c = c + t:get("other")
    sa = sa + (t:get("sum_append") or 0); sp = sp + (t:get("sum_project") or 0); n = n + (t:get("timed") or 0)
  end
  io.write(string.format("RESULT %d %d %d\\n", a, b, c))
  if n > 0 then io.write(string.format("TIMING %.3f %.3f\\n", sa / n, sp / n)) end
end
"""


async def py_load(mode: str, url: str, conns: int, seconds: float) -> dict[str, Any]:
    """Fallback load generator (no wrk): an aiohttp client in a separate process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_api", "--load", mode, url, str(conns), str(seconds),
        stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
    )
    out, _ = await proc.communicate()
    return json.loads(out.decode().strip().splitlines()[-1])


async def _py_load_run(mode: str, url: str, conns: int, seconds: float) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    lat: list[float] = []
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(i: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                t = time.perf_counter()
                if mode == "get":
                    async with session.get(url) as r:
                        await r.read()
                else:
                    body = {"operational": {"batch_size": n}, "features": {"x": True}}
                    async with session.post(f"{url}/api/v1/config/bench-w{i + 1}", json=body) as r:
                        await r.read()
                lat.append(time.perf_counter() - t)
                statuses[r.status] = statuses.get(r.status, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(conns)))
        elapsed = time.perf_counter() - t0
    s = summary_ms(lat)
    return {"req_per_s": round(len(lat) / elapsed, 1), "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"],
            "requests": len(lat), "status_200": statuses.get(200, 0), "status_202": statuses.get(202, 0),
            "status_other": sum(v for k, v in statuses.items() if k not in (200, 202)), "load": "aiohttp"}


async def load_get(url: str, seconds: float) -> dict[str, Any]:
    if shutil.which("wrk"):
        return await wrk(["-t2", "-c50", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {ADMIN_TOKEN}", url])
    return await py_load("get", url, 50, seconds)


async def interleaved_get(base: str, api: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alternate short runs on the two servers so that noise from the (shared) machine hits both
    alike; req/s over all rounds, p50/p99 the median of the rounds'."""
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "api": []}
    for _ in range(GET_ROUNDS):
        runs["base"].append(await load_get(base, max(1, DURATION_S // GET_ROUNDS)))
        runs["api"].append(await load_get(api, max(1, DURATION_S // GET_ROUNDS)))
    out = []
    for name in ("base", "api"):
        rounds = runs[name]
        total = sum(r["req_per_s"] for r in rounds) / len(rounds)
        merged: dict[str, Any] = {"req_per_s": round(total, 1), "rounds_req_per_s": [r["req_per_s"] for r in rounds]}
        for key in ("p50_ms", "p99_ms"):
            values = sorted(r[key] for r in rounds if key in r)
            if values:
                merged[key] = values[len(values) // 2]
        merged["non_2xx"] = sum(r.get("non_2xx", 0) for r in rounds)
        out.append(merged)
    return out[0], out[1]


async def load_post(base: str, seconds: float, workdir: Path) -> dict[str, Any]:
    if shutil.which("wrk"):
        script = workdir / "post.lua"
        script.write_text(_POST_LUA.replace("TOKEN", ADMIN_TOKEN))
        return await wrk([f"-t{WRITERS}", f"-c{WRITERS}", f"-d{seconds}s", "--latency", "-s", str(script), base])
    return await py_load("post", base, WRITERS, seconds)


# --- baselines measured in-process -----------------------------------------------------------


async def ledger_baseline(settings: LedgerSettings, seconds: float) -> float:
    """Ledger.append from 50 concurrent tasks on 50 services: the ledger alone."""
    async with Ledger.connect(settings=settings) as led:
        done = 0
        deadline = time.perf_counter() + seconds

        async def writer(i: int) -> None:
            nonlocal done
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                await led.append(f"bench-l{i}", Replace({"operational": {"batch_size": n}, "features": {"x": True}}),
                                 actor="bench", reason="")
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(i) for i in range(WRITERS)))
        return done / (time.perf_counter() - t0)


RAW = LedgerSettings(stream="BENCH_RAW", subject_prefix="bench.raw")


async def raw_stream(settings: LedgerSettings) -> LedgerSettings:
    """A stream of its own for the raw baselines (same settings as the ledger's), so their bytes
    never reach the projector."""
    raw = RAW.model_copy(update={"nats_url": settings.nats_url})
    shipped = load_streams_file(REPO_ROOT / "streams.yaml").streams[0]
    spec = shipped.model_copy(update={"name": raw.stream, "subjects": [raw.subject_wildcard]})
    async with Ledger.connect(settings=raw) as led:
        await apply_streams(led.js, StreamsFile(streams=[spec]))
    return raw


async def raw_publish_baseline(settings: LedgerSettings, seconds: float) -> float:
    """Awaited js.publish with CAS + msg-id headers from 50 tasks on 50 subjects: the ceiling that
    NATS with ``sync_interval: always`` (an fsync per message) puts on any writer here."""
    async with Ledger.connect(settings=settings) as led:
        done = 0
        deadline = time.perf_counter() + seconds
        data = orjson.dumps({"operational": {"batch_size": 1}, "pad": "x" * 350})

        async def writer(i: int) -> None:
            nonlocal done
            last = 0
            while time.perf_counter() < deadline:
                ack = await led.js.publish(
                    settings.subject(f"bench-raw{i}"), data, stream=settings.stream,
                    headers={MSG_ID: str(uuid.uuid4()), EXPECTED_LAST_SUBJECT_SEQ: str(last)},
                )
                last = ack.seq
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(i) for i in range(WRITERS)))
        return done / (time.perf_counter() - t0)


async def nats_latency_baseline(settings: LedgerSettings) -> list[float]:
    """Raw js.publish → ordered consumer callback, paced like the SSE measurement."""
    async with Ledger.connect(settings=settings) as led:
        subject = settings.subject("bench-raw")
        arrived: dict[int, float] = {}
        got = asyncio.Event()

        async def on_msg(msg: Any) -> None:
            arrived[int(msg.data)] = time.perf_counter()
            got.set()

        sub = await led.js.subscribe(
            subject, stream=settings.stream, ordered_consumer=True, idle_heartbeat=1, cb=on_msg,
            config=js_api.ConsumerConfig(deliver_policy=js_api.DeliverPolicy.NEW),
        )
        samples = []
        try:
            for i in range(SSE_WRITES):
                got.clear()
                t0 = time.perf_counter()
                await led.js.publish(subject, str(i).encode(), stream=settings.stream)
                while i not in arrived:
                    await asyncio.wait_for(got.wait(), 5)
                    got.clear()
                samples.append(arrived[i] - t0)
                await asyncio.sleep(SSE_PACE_S)
        finally:
            await sub.unsubscribe()
        return samples


# --- SSE latency -----------------------------------------------------------------------------


def _timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        with contextlib.suppress(ValueError):
            out[name] = float(dur) / 1000
    return out


async def sse_latency(base: str) -> tuple[list[float], list[float], list[float], list[float]]:
    """(POST → SSE event, POST → response, in the ledger, unused) for paced writes to one watched
    service (the ledger time from the API's Server-Timing header)."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    service = "bench-sse"
    arrived: dict[int, float] = {}
    got = asyncio.Event()
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{base}/api/v1/config/{service}", json={"n": 0}) as r:
            assert r.status == 200, await r.text()

        async def watch() -> None:
            async with session.get(f"{base}/api/v1/config/{service}/watch") as resp:
                async for raw in resp.content:
                    if raw.startswith(b"id: "):
                        arrived[int(raw[4:])] = time.perf_counter()
                        got.set()

        watcher = asyncio.create_task(watch())
        try:
            while 1 not in arrived:  # the initial state: the watch is live
                await asyncio.wait_for(got.wait(), 10)
                got.clear()
            event_lat, post_lat, append_lat, project_lat = [], [], [], []
            for i in range(1, SSE_WRITES + 1):
                t0 = time.perf_counter()
                async with session.post(f"{base}/api/v1/config/{service}", json={"n": i}) as r:
                    body = await r.json()
                    timing = _timing(r.headers.get("Server-Timing", ""))
                t1 = time.perf_counter()
                append_lat.append(timing.get("append", float("nan")))
                project_lat.append(timing.get("project", float("nan")))
                version = body["version"]
                while version not in arrived:
                    await asyncio.wait_for(got.wait(), 10)
                    got.clear()
                event_lat.append(arrived[version] - t0)
                post_lat.append(t1 - t0)
                await asyncio.sleep(SSE_PACE_S)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return event_lat, post_lat, append_lat, project_lat


# --- main ------------------------------------------------------------------------------------


async def wait_caught_up(api_url: str, timeout: float = 120) -> None:
    """Until /readyz reports the projector caught up (lag 0)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(f"{api_url}/readyz") as resp:
                body = await resp.json()
            if body.get("checks", {}).get("projector", {}).get("lag_events") == 0:
                return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the projector did not catch up in {timeout}s: {body}")


async def _versions_written(settings: LedgerSettings) -> int:
    async with Ledger.connect(settings=settings) as led:
        total = 0
        for entry in await led.services():
            if entry.event.service.startswith("bench-w"):
                total += entry.event.version
        return total


async def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp, private_nats() as nats_srv, private_pg() as pg:
        work = Path(tmp)
        settings = LedgerSettings(nats_url=nats_srv.url)
        async with Ledger.connect(settings=settings) as led:
            await apply_streams(led.js, load_streams_file(REPO_ROOT / "streams.yaml"))
        db_url = pg.url()
        conn = await asyncpg.connect(db_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        # Baselines that write go first, before the projector runs; it catches up at start.
        ledger_rate = await ledger_baseline(settings, 5)
        raw = await raw_stream(settings)
        raw_rate = await raw_publish_baseline(raw, 5)
        raw_lat = await nats_latency_baseline(raw)

        api_port, base_port = free_port(), free_port()
        env = {
            **os.environ,
            "NATS_URL": settings.nats_url,
            "DATABASE_URL": db_url,
            "API_PORT": str(api_port),
            "API_TOKENS": json.dumps([{"token": ADMIN_TOKEN, "identity": "bench", "role": "admin"}]),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
        }
        # The projector's batching window (PROJECTOR_BATCH_DELAY_MS, its default 20 ms) is part of
        # every write's latency; BENCH_PROJECTOR_BATCH_DELAY_MS overrides it for a comparison run.
        projector_env = dict(env)
        if os.environ.get("BENCH_PROJECTOR_BATCH_DELAY_MS"):
            projector_env["PROJECTOR_BATCH_DELAY_MS"] = os.environ["BENCH_PROJECTOR_BATCH_DELAY_MS"]
        api_url, base_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{base_port}"
        with (
            spawn([sys.executable, "-m", "projector", "run"], projector_env, work / "projector.log"),
            spawn([sys.executable, "-m", "api"], env, work / "api.log") as api_proc,
            spawn([sys.executable, "-m", "bench.bench_api", "--baseline-server", str(base_port)], env,
                  work / "baseline.log") as base_proc,
        ):
            await wait_http(f"{api_url}/healthz", api_proc, work / "api.log")
            await wait_http(f"{base_url}/healthz", base_proc, work / "baseline.log")
            async with aiohttp.ClientSession() as s, s.post(
                f"{api_url}/api/v1/config/{GET_SERVICE}", json=DOC,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as r:
                assert r.status == 200, await r.text()

            await wait_caught_up(api_url)

            get_path = f"/api/v1/config/{GET_SERVICE}"
            await load_get(base_url + get_path, WARMUP_S)
            await load_get(api_url + get_path, WARMUP_S)
            base_get, api_get = await interleaved_get(base_url + get_path, api_url + get_path)

            await load_post(api_url, WARMUP_S, work)
            await wait_caught_up(api_url)
            warm_versions = await _versions_written(settings)
            api_post = await load_post(api_url, DURATION_S, work)
            written = await _versions_written(settings) - warm_versions
            acknowledged = api_post.get("status_200", 0) + api_post.get("status_202", 0)
            api_post["acknowledged_per_s"] = round(api_post.get("status_200", 0) / DURATION_S, 1)
            api_post["appended_in_ledger"] = written
            api_post["acknowledged"] = acknowledged
            await wait_caught_up(api_url)

            event_lat, post_lat, append_lat, project_lat = await sse_latency(api_url)
            load_tool = "wrk" if shutil.which("wrk") else "aiohttp client (separate process)"

    get_ratio = api_get["req_per_s"] / base_get["req_per_s"]
    result: dict[str, Any] = {
        "load_generator": load_tool,
        "nats_sync_interval": "always",
        "projector_batch_delay_ms": int(os.environ.get("BENCH_PROJECTOR_BATCH_DELAY_MS") or 20),
        "get_current": {"api": api_get, "baseline_minimal_aiohttp": base_get, "ratio": round(get_ratio, 3),
                        "target_ratio": 0.6, "connections": 50, "auth": "bearer token (admin)"},
        "post": {"api": api_post, "baseline_ledger_append_per_s": round(ledger_rate, 1),
                 "baseline_raw_js_publish_per_s": round(raw_rate, 1),
                 "ratio": round(api_post["acknowledged_per_s"] / ledger_rate, 3),
                 "ratio_to_raw_publish": round(api_post["acknowledged_per_s"] / raw_rate, 3), "writers": WRITERS,
                 "services": WRITERS, "target_acknowledged_per_s": 2000},
        "post_to_sse_event": {"api": summary_ms(event_lat), "post_response": summary_ms(post_lat),
                              "post_in_ledger": summary_ms(append_lat),
                              "baseline_nats_publish_to_consumer": summary_ms(raw_lat),
                              "pace_ms": SSE_PACE_S * 1000},
    }
    print(line("GET current req/s (50 conns)", api_get["req_per_s"], "req/s", "minimal aiohttp JSON", base_get["req_per_s"], ">= 0.60"))
    print(line("GET current p99", api_get.get("p99_ms", float("nan")), "ms", "minimal aiohttp JSON p99", base_get.get("p99_ms", float("nan"))))
    print(line("POST acknowledged writes/s (50x50)", api_post["acknowledged_per_s"], "w/s", "Ledger.append 50 tasks", ledger_rate, ">= 2000 w/s"))
    print(line("POST acknowledged writes/s (50x50)", api_post["acknowledged_per_s"], "w/s", "raw js.publish 50 tasks", raw_rate))
    print(f"  POST: {api_post.get('status_200', 0)} x 200, {api_post.get('status_202', 0)} x 202, "
          f"{api_post.get('status_other', 0)} other; ledger grew by {written} versions; "
          f"p50 {api_post.get('p50_ms')} ms, p99 {api_post.get('p99_ms')} ms; mean in ledger "
          f"{api_post.get('mean_in_ledger_ms')} ms")
    ev, raw = result["post_to_sse_event"]["api"], result["post_to_sse_event"]["baseline_nats_publish_to_consumer"]
    print(line("POST -> SSE event p50", ev["p50_ms"], "ms", "js.publish -> consumer p50", raw["p50_ms"]))
    print(line("POST -> SSE event p99", ev["p99_ms"], "ms", "js.publish -> consumer p99", raw["p99_ms"]))
    pe = result["post_to_sse_event"]
    print(f"  paced POST: response p50 {pe['post_response']['p50_ms']} ms, in the ledger p50 "
          f"{pe['post_in_ledger']['p50_ms']} ms")
    print(f"  load generator: {load_tool}")
    write_results("api", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--baseline-server":
        baseline_server(int(sys.argv[2]))
    elif len(sys.argv) > 5 and sys.argv[1] == "--load":
        res = asyncio.run(_py_load_run(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
        print(orjson.dumps(res).decode())
    else:
        asyncio.run(main())
