"""Client benchmarks, each beside a baseline measured in the same run on the same server.

1. Hot-reload latency: ``Ledger.append`` returning → the ``ConfigClient`` callback, over 1,000
   changes paced 5 ms apart, against raw ``js.publish`` returning → an ordered-consumer callback
   (target: p99 within 2x of raw). Rounds alternate so machine noise hits both alike.
2. Cold start to the first config from the stream (target <= 20 ms), against a bare
   connect + direct get.
3. Audit replay with hash verification (``AuditReader.verify``, target >= 30,000 events/s),
   against a bare ordered-consumer replay of the same messages.

A private nats-server with the shipped config (``sync_interval: always``) in a temp dir, the
stream spec applied as ``tests/conftest.py`` does. Run: ``python -m bench.bench_client`` (or
``make bench``); figures go to ``bench/results/client.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.js import api as js_api

from client import AuditReader, ConfigClient
from ledger import Event, Ledger, LedgerSettings, Replace, nats_io, watch
from ledger.event import Patch, new_event
from ledger.nats_io import MSG_ID
from ledger.streams import StreamsFile, apply_streams, load_streams_file
from ops.embedded import REPO_ROOT

from .common import line, private_nats, summary_ms, write_results

CHANGES, ROUNDS, PACE_S = 1000, 10, 0.005
COLD_STARTS = 30
REPLAY_SERVICES, REPLAY_EVENTS = 20, 20_000
DOC = {"operational": {"batch_size": 200, "gap_check_interval_hours": 1, "flags": ["a", "b"]}}


def stream_spec(settings: LedgerSettings) -> StreamsFile:
    """streams.yaml, renamed to the settings' stream and subjects (as tests/conftest.py does)."""
    shipped = load_streams_file(REPO_ROOT / "streams.yaml")
    spec = shipped.streams[0].model_copy(update={"name": settings.stream, "subjects": [settings.subject_wildcard]})
    return StreamsFile(streams=[spec])


async def bench_latency(led: Ledger, settings: LedgerSettings, lkg_dir: Path) -> dict[str, Any]:
    js = led.nc.jetstream()
    await led.append("bench-client", Replace({"round": -1, **DOC}), actor="bench")
    client = ConfigClient(
        "bench-client",
        nats_url=settings.nats_url,
        ledger_settings=settings,
        enable_nats_updates=True,
        environ={"CONFIG_LEDGER_LKG_DIR": str(lkg_dir)},
    )
    await client.init_async()
    client_seen: dict[int, float] = {}
    raw_seen: dict[int, float] = {}
    all_seen = asyncio.Event()

    def client_callback(_config: dict[str, Any]) -> None:
        client_seen[client.version or 0] = time.perf_counter()
        if len(client_seen) >= CHANGES and len(raw_seen) >= CHANGES:
            all_seen.set()

    async def raw_callback(msg: Msg) -> None:
        raw_seen[msg.metadata.sequence.stream] = time.perf_counter()
        if len(client_seen) >= CHANGES and len(raw_seen) >= CHANGES:
            all_seen.set()

    client.on_config_update(client_callback)

    raw_sub = await js.subscribe(
        settings.subject("bench-raw"),
        stream=settings.stream,
        cb=raw_callback,
        ordered_consumer=True,
        idle_heartbeat=1,
        config=js_api.ConsumerConfig(deliver_policy=js_api.DeliverPolicy.NEW),
    )
    sample = (await led.current("bench-client")).to_bytes()  # type: ignore[union-attr]
    client_sent: dict[int, tuple[float, float]] = {}  # version -> (call, return)
    raw_sent: dict[int, tuple[float, float]] = {}  # stream seq -> (call, return)
    per_round = CHANGES // ROUNDS
    try:
        for r in range(ROUNDS):
            for _ in range(per_round):
                t_call = time.perf_counter()
                ack = await js.publish(settings.subject("bench-raw"), sample, stream=settings.stream)
                raw_sent[ack.seq] = (t_call, time.perf_counter())
                await asyncio.sleep(PACE_S)
            for i in range(per_round):
                t_call = time.perf_counter()
                done = await led.append(
                    "bench-client", Patch({"operational": {"batch_size": r * per_round + i}}), actor="bench"
                )
                client_sent[done.version] = (t_call, time.perf_counter())
                await asyncio.sleep(PACE_S)
        with contextlib.suppress(TimeoutError):  # what is missing by then is reported as missed
            await asyncio.wait_for(all_seen.wait(), 30)
    finally:
        await raw_sub.unsubscribe()
        await client.shutdown()

    def latencies(sent: dict[int, tuple[float, float]], seen: dict[int, float], which: int) -> list[float]:
        return [seen[k] - v[which] for k, v in sent.items() if k in seen]

    result: dict[str, Any] = {
        "changes": CHANGES,
        "pace_ms": PACE_S * 1000,
        "client_from_return": summary_ms(latencies(client_sent, client_seen, 1)),
        "raw_from_return": summary_ms(latencies(raw_sent, raw_seen, 1)),
        "client_from_call": summary_ms(latencies(client_sent, client_seen, 0)),
        "raw_from_call": summary_ms(latencies(raw_sent, raw_seen, 0)),
        "client_missed": CHANGES - len([k for k in client_sent if k in client_seen]),
        "raw_missed": CHANGES - len([k for k in raw_sent if k in raw_seen]),
        "client_before_return": sum(1 for v in latencies(client_sent, client_seen, 1) if v < 0),
        "raw_before_return": sum(1 for v in latencies(raw_sent, raw_seen, 1) if v < 0),
    }
    result["p99_ratio"] = round(result["client_from_return"]["p99_ms"] / result["raw_from_return"]["p99_ms"], 3)
    return result


async def bench_cold_start(led: Ledger, settings: LedgerSettings) -> dict[str, Any]:
    await led.append("bench-cold", Replace(DOC), actor="bench")
    client_s, raw_s = [], []
    for _ in range(COLD_STARTS):
        t = time.perf_counter()
        client = ConfigClient(
            "bench-cold", nats_url=settings.nats_url, ledger_settings=settings,
            enable_nats_updates=True, environ={}, lkg_path=False,
        )
        await client.init_async()
        config = await client.get_config()
        client_s.append(time.perf_counter() - t)
        assert config == DOC and client.source == "stream"
        await client.shutdown()

        t = time.perf_counter()
        nc = await nats_io.connect(settings.nats_url)
        msg = await nats_io.direct_last(nc, settings.stream, settings.subject("bench-cold"))
        Event.from_bytes(msg.data)  # type: ignore[union-attr]
        raw_s.append(time.perf_counter() - t)
        await nc.close()
    return {"client": summary_ms(client_s), "raw_connect_direct_get": summary_ms(raw_s), "n": COLD_STARTS}


async def populate_replay(led: Ledger, settings: LedgerSettings) -> int:
    """REPLAY_EVENTS valid chained events over REPLAY_SERVICES services, published pipelined
    (appending them one by one through the CAS writer would take minutes here)."""
    js = led.nc.jetstream()
    last: dict[str, Event] = {}
    batch: list[Any] = []
    now = datetime.now(UTC)
    for i in range(REPLAY_EVENTS):
        service = f"replay-{i % REPLAY_SERVICES:02d}"
        event = new_event(
            last.get(service), service, Replace({"n": i, **DOC}), actor="bench", reason="replay",
            occurred_at=now, event_id=str(uuid.uuid4()),
        )
        last[service] = event
        # the Nats-Msg-Id header the writer stores with every event (its CAS header is left out:
        # an expected sequence cannot be pipelined)
        batch.append(js.publish(settings.subject(service), event.to_bytes(), headers={MSG_ID: event.event_id}))
        if len(batch) == 200:
            await asyncio.gather(*batch)
            batch = []
    await asyncio.gather(*batch)
    return REPLAY_EVENTS


async def _bare_replay(nc: Any, settings: LedgerSettings) -> int:
    """The floor: an ordered consumer delivering to a callback, counting messages, no parsing."""
    done = asyncio.get_running_loop().create_future()
    count = 0

    async def callback(msg: Msg) -> None:
        nonlocal count
        count += 1
        if msg.metadata.num_pending == 0 and not done.done():
            done.set_result(None)

    sub = await nc.jetstream().subscribe(
        settings.subject_wildcard, stream=settings.stream, cb=callback, ordered_consumer=True,
        idle_heartbeat=1, config=js_api.ConsumerConfig(deliver_policy=js_api.DeliverPolicy.ALL),
    )
    await asyncio.wait_for(done, 60)
    await sub.unsubscribe()
    return count


async def _timed(work: Any) -> tuple[int, float, float]:
    """(items, wall seconds, CPU seconds of this process) for ``await work``."""
    wall, cpu = time.perf_counter(), time.process_time()
    n = await work
    return n, time.perf_counter() - wall, time.process_time() - cpu


async def bench_replay(led: Ledger, settings: LedgerSettings) -> dict[str, Any]:
    await populate_replay(led, settings)
    runs: dict[str, list[tuple[int, float, float]]] = {"verify": [], "replay": [], "bare": [], "nats_io": []}
    async with AuditReader.connect(settings=settings) as reader:

        async def verify() -> int:
            report = await reader.verify()
            assert report.ok, report.problems[:3]
            return report.events

        async def replay() -> int:
            return len([entry async for entry in reader.replay()])

        async def nats_io_replay() -> int:
            return len([m async for m in watch.replay(reader.nc, settings.stream, settings.subject_wildcard)])

        for _ in range(3):
            runs["verify"].append(await _timed(verify()))
            runs["replay"].append(await _timed(replay()))
            runs["bare"].append(await _timed(_bare_replay(reader.nc, settings)))
            runs["nats_io"].append(await _timed(nats_io_replay()))

    def rate(name: str) -> float:
        return round(statistics.median(n / wall for n, wall, _ in runs[name]), 1)

    def cpu_us(name: str) -> float:
        return round(statistics.median(cpu / n * 1e6 for n, _, cpu in runs[name]), 1)

    return {
        "events": runs["verify"][0][0],
        "verify_per_s": rate("verify"),
        "replay_verified_per_s": rate("replay"),
        "bare_ordered_consumer_per_s": rate("bare"),
        "ledger_nats_io_replay_per_s": rate("nats_io"),
        "cpu_us_per_event": {name: cpu_us(name) for name in runs},
    }


def _ms_line(name: str, value: float, baseline_name: str, baseline: float, target: str = "") -> str:
    ratio = f"{value / baseline:6.2f}" if baseline > 0 and value > 0 else "   n/a"
    text = f"{name:<38} {value:>9.3f} ms | {baseline_name:<34} {baseline:>9.3f} ms | ratio {ratio}"
    return text + (f"  (target {target})" if target else "")


async def main() -> dict[str, Any]:
    with private_nats() as server, tempfile.TemporaryDirectory(prefix="bench-lkg-") as lkg:
        settings = LedgerSettings(nats_url=server.url)
        async with Ledger.connect(settings=settings) as led:
            await apply_streams(led.js, stream_spec(settings))
            latency = await bench_latency(led, settings, Path(lkg))
            cold = await bench_cold_start(led, settings)
        # The replay runs on a stream of its own: the latency baseline's raw publishes are not
        # ledger events, and verify() would rightly report them.
        replay_settings = LedgerSettings(nats_url=server.url, stream="BENCH_REPLAY", subject_prefix="replay.events")
        async with Ledger.connect(settings=replay_settings) as led:
            await apply_streams(led.js, stream_spec(replay_settings))
            replay = await bench_replay(led, replay_settings)
    result = {"latency": latency, "cold_start": cold, "replay": replay,
              "targets": {"latency_p99_ratio": "<= 2.0", "cold_start_ms": "<= 20", "verify_per_s": ">= 30000"}}
    lat, c, r = latency, cold["client"], replay
    print(_ms_line("append returned -> client callback p50", lat["client_from_return"]["p50_ms"],
                   "publish returned -> ordered cb p50", lat["raw_from_return"]["p50_ms"]))
    print(_ms_line("append returned -> client callback p99", lat["client_from_return"]["p99_ms"],
                   "publish returned -> ordered cb p99", lat["raw_from_return"]["p99_ms"], "ratio <= 2"))
    print(_ms_line("append called -> client callback p50", lat["client_from_call"]["p50_ms"],
                   "publish called -> ordered cb p50", lat["raw_from_call"]["p50_ms"]))
    print(_ms_line("append called -> client callback p99", lat["client_from_call"]["p99_ms"],
                   "publish called -> ordered cb p99", lat["raw_from_call"]["p99_ms"]))
    print(f"  {CHANGES} changes each, paced {PACE_S * 1000:.0f} ms; missed: client {lat['client_missed']}, "
          f"raw {lat['raw_missed']}; callback before the writer's ack returned: client "
          f"{lat['client_before_return']}, raw {lat['raw_before_return']} (negative latencies)")
    print(_ms_line("cold start to first config p50", c["p50_ms"],
                   "connect + direct get p50", cold["raw_connect_direct_get"]["p50_ms"], "<= 20 ms"))
    print(_ms_line("cold start to first config p99", c["p99_ms"],
                   "connect + direct get p99", cold["raw_connect_direct_get"]["p99_ms"]))
    print(line("audit verify (hash chain), events/s", r["verify_per_s"], "ev/s",
               "bare ordered-consumer callback", r["bare_ordered_consumer_per_s"], ">= 30,000 ev/s"))
    print(line("audit replay(verify=True), events/s", r["replay_verified_per_s"], "ev/s",
               "bare ordered-consumer callback", r["bare_ordered_consumer_per_s"]))
    print(line("  (ledger.watch.replay, for reference)", r["ledger_nats_io_replay_per_s"], "ev/s",
               "bare ordered-consumer callback", r["bare_ordered_consumer_per_s"]))
    cpu = r["cpu_us_per_event"]
    print(f"  CPU per event in this process: verify {cpu['verify']} us, replay {cpu['replay']} us, bare "
          f"{cpu['bare']} us, nats_io.replay {cpu['nats_io']} us (1e6/us = the rate on a free core)")
    path = write_results("client", result)
    print(f"  results: {path}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
