"""Projector catch-up rate: 100,000 events across 50 services, beside two raw floors.

    python -m bench.bench_projector            # from the repository root

Private nats-server (shipped config) and PostgreSQL in a temporary folder. The events are built
with ``ledger.event.new_event`` and published with raw, concurrent ``js.publish`` (appending 100k
through CAS would take minutes). Then, on the same data, each measured ``repeats`` times (best
kept, every sample reported):

- floor "consume": reading the whole stream with the projector's consumer, writing nothing;
- floor "executemany": asyncpg ``executemany`` of the same ``config_versions`` rows, 500 per
  transaction, into a fresh migrated database, consuming nothing;
- the projector: ``Projector.run`` (default settings: batches of 500 / 20 ms) from an empty
  database until its checkpoint is the stream's last sequence — consume, verify every chain,
  COPY rows, upsert current, checkpoint, NOTIFY.

Targets: the projector >= 50 % of the slower floor and >= 10,000 events/s. Prints the figures and
writes them to bench/results/projector.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats

from ledger import LedgerSettings
from ledger.event import Event, Patch, Replace, new_event
from ledger.streams import StreamsFile, apply_streams, load_streams_file
from ops.embedded import REPO_ROOT, NatsServer, PostgresServer
from projector import Projector, ProjectorSettings, migrate
from projector.rows import VERSION_COLUMNS, VersionRow, version_row
from projector.stream import StreamReader

EVENTS = 100_000
SERVICES = 50
BATCH = 500
RESULTS = REPO_ROOT / "bench" / "results" / "projector.json"


def build_events(total: int = EVENTS, services: int = SERVICES) -> list[Event]:
    """``total`` valid events, round-robin over ``services`` chains (replace, then patches)."""
    names = [f"bench-svc-{i:02d}" for i in range(services)]
    last: dict[str, Event] = {}
    t0 = datetime.now(UTC)
    out: list[Event] = []
    for i in range(total):
        name = names[i % services]
        prev = last.get(name)
        change = (
            Replace({"operational": {"batch_size": i, "workers": 4, "flags": ["a", "b"]}, "owner": name})
            if prev is None or i % 10 == 0
            else Patch({"operational": {"batch_size": i}})
        )
        event = new_event(prev, name, change, actor="bench", reason="benchmark",
                          occurred_at=t0 + timedelta(microseconds=i), event_id=str(uuid.uuid4()))
        last[name] = event
        out.append(event)
    return out


async def publish(nc: Any, settings: LedgerSettings, events: list[Event], in_flight: int = 1000) -> float:
    js = nc.jetstream(timeout=30)
    bodies = [(settings.subject(e.service), e.to_bytes()) for e in events]
    started = time.perf_counter()
    for k in range(0, len(bodies), in_flight):
        await asyncio.gather(*(js.publish(s, b, stream=settings.stream) for s, b in bodies[k : k + in_flight]))
    return time.perf_counter() - started


async def floor_consume(nc: Any, settings: ProjectorSettings, total: int) -> float:
    """Seconds to read the whole stream through the projector's consumer, writing nothing."""
    started = time.perf_counter()
    seen = 0
    async with StreamReader(nc, stream=settings.stream, subject=settings.subject_wildcard, start_seq=1,
                            high_water=4 * 1000, pull_size=1000) as reader:
        while seen < total:
            seen += len(await reader.batch(BATCH, 0))
    return time.perf_counter() - started


async def fresh_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


async def floor_executemany(url: str, rows: list[VersionRow]) -> float:
    """Seconds to insert ``rows`` with executemany, BATCH rows per transaction."""
    sql = (
        f"INSERT INTO config_versions ({', '.join(VERSION_COLUMNS)}) "
        f"VALUES ({', '.join(f'${i + 1}' for i in range(len(VERSION_COLUMNS)))})"
    )
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for k in range(0, len(rows), BATCH):
            async with conn.transaction():
                await conn.executemany(sql, rows[k : k + BATCH])
        return time.perf_counter() - started
    finally:
        await conn.close()


async def projector_catch_up(settings: ProjectorSettings, total: int) -> float:
    """Seconds from ``Projector.run`` to a checkpoint at ``total``."""
    stop = asyncio.Event()
    projector = Projector(settings, instance="bench")
    started = time.perf_counter()
    task = asyncio.create_task(projector.run(stop))
    conn = None
    try:
        while True:
            if task.done():
                task.result()
                raise RuntimeError("the projector stopped before catching up")
            if conn is None:
                try:
                    conn = await asyncpg.connect(settings.database_url)
                except OSError:
                    conn = None
            if conn is not None:
                try:
                    applied = await conn.fetchval("SELECT last_seq FROM projector_checkpoint")
                except asyncpg.UndefinedTableError:
                    applied = 0
                if applied == total:
                    return time.perf_counter() - started
            await asyncio.sleep(0.02)  # polling cadence of the measurement, not synchronisation
    finally:
        stop.set()
        await task
        if conn is not None:
            await conn.close()


def _start_servers() -> tuple[Path, NatsServer, PostgresServer]:
    work = Path(tempfile.mkdtemp(prefix="bench-projector-"))
    work.chmod(0o755)  # the postgres user must reach its data dir when we run as root
    nats_server = NatsServer(work / "nats").start()
    try:
        return work, nats_server, PostgresServer(work / "pg").start()
    except BaseException:
        nats_server.kill()
        raise


def _stop_servers(work: Path, nats_server: NatsServer, pg: PostgresServer) -> None:
    nats_server.kill()
    pg.stop("immediate")
    shutil.rmtree(work, ignore_errors=True)


def _write(result: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


def _rate(seconds: list[float], n: int) -> dict[str, Any]:
    return {"events_per_s": round(n / min(seconds)), "samples_events_per_s": [round(n / s) for s in seconds]}


async def main(total: int = EVENTS, services: int = SERVICES, repeats: int = 2) -> dict[str, Any]:
    """Run the benchmark; print and return the figures (also written to bench/results)."""
    logging.basicConfig(level=logging.WARNING)
    work, nats_server, pg = await asyncio.to_thread(_start_servers)
    try:
        ledger_settings = LedgerSettings(nats_url=nats_server.url)
        spec = load_streams_file(REPO_ROOT / "streams.yaml").streams[0]
        nc = await nats.connect(nats_server.url)
        try:
            await apply_streams(nc.jetstream(), StreamsFile(streams=[spec]))
            print(f"building {total} events over {services} services ...", flush=True)
            events = build_events(total, services)
            published = await publish(nc, ledger_settings, events)
            print(f"published in {published:.1f}s ({total / published:.0f}/s)", flush=True)

            admin = pg.url()
            base = ProjectorSettings(database_url=admin, nats_url=nats_server.url)
            consume = [await floor_consume(nc, base, total) for _ in range(repeats)]
            print(f"floor consume:     {total / min(consume):>9,.0f} events/s", flush=True)

            stored = datetime.now(UTC)
            rows = [version_row(e, i + 1, stored) for i, e in enumerate(events)]
            inserts = []
            for r in range(repeats):
                url = await fresh_database(admin, f"bench_floor_{r}")
                inserts.append(await floor_executemany(url, rows))
            print(f"floor executemany: {total / min(inserts):>9,.0f} events/s", flush=True)

            runs = []
            for r in range(repeats):
                url = await fresh_database(admin, f"bench_projector_{r}")
                runs.append(await projector_catch_up(base.model_copy(update={"database_url": url}), total))
            print(f"projector:         {total / min(runs):>9,.0f} events/s", flush=True)
        finally:
            await nc.close()
    finally:
        await asyncio.to_thread(_stop_servers, work, nats_server, pg)

    floor_c, floor_e, proj = _rate(consume, total), _rate(inserts, total), _rate(runs, total)
    slower = min(floor_c["events_per_s"], floor_e["events_per_s"])
    rate = proj["events_per_s"]
    result = {
        "benchmark": "projector catch-up",
        "events": total,
        "services": services,
        "batch_size": BATCH,
        "repeats": repeats,
        "publish_events_per_s": round(total / published),
        "projector": proj,
        "floor_consume": floor_c,
        "floor_executemany": floor_e,
        "ratio_to_consume_floor": round(rate / floor_c["events_per_s"], 3),
        "ratio_to_executemany_floor": round(rate / floor_e["events_per_s"], 3),
        "ratio_to_slower_floor": round(rate / slower, 3),
        "target_ratio": 0.5,
        "target_events_per_s": 10_000,
        "meets_targets": rate >= 0.5 * slower and rate >= 10_000,
        "measured_at": datetime.now(UTC).isoformat(),
    }
    print(
        f"projector {rate:,} events/s = {result['ratio_to_slower_floor']:.0%} of the slower floor "
        f"({slower:,}/s); consume floor x{result['ratio_to_consume_floor']}, executemany floor "
        f"x{result['ratio_to_executemany_floor']}; targets (>= 50 %, >= 10,000/s) "
        f"{'met' if result['meets_targets'] else 'NOT met'}"
    )
    await asyncio.to_thread(_write, result)
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
