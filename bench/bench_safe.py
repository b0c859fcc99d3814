"""Safe changes: change-set write rate against single writes, and blame at 10k versions.

1. Write rate, one private nats-server (shipped ``sync_interval: always``), interleaved rounds
   so machine noise hits all alike: sequential single writes (``Ledger.append``, the baseline),
   change sets of 2 services and of 20 services (``ledger.changeset.commit``). Reported as
   service changes (events) per second and sets per second.
2. Blame of one service with 10 000 versions (a 40-key document; each version patches one key,
   or replaces the document with one key changed), from a private PostgreSQL holding the
   projection: cold (fetch every version + fold, what the first request costs), warm (the API's
   cached fold + one new version), the fold alone, and beside them the same-run baselines: the
   fetch alone and a naive blame (walk back per leaf).

Run: ``python -m bench.bench_safe`` (or ``python -m bench safe``); about a minute on an idle machine.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from api.repository import Repository as ApiRepository
from api.repository import create_pool
from ledger import Ledger, LedgerSettings, Replace
from ledger.blame import Blame, Origin, leaves
from ledger.canonical import dumps
from ledger.changeset import BATCH_COMMIT, BATCH_ID, BATCH_SEQ, Member, commit
from ledger.event import Event, Patch, new_event
from ledger.streams import apply_streams, load_streams_file
from ops.embedded import REPO_ROOT
from projector.migrate import migrate
from projector.rows import VERSION_COLUMNS, version_row

from .common import line, private_nats, private_pg, summary_ms, write_results

ROUNDS = 3
SINGLES, SETS2, SETS20 = 200, 100, 10
VERSIONS = 10_000
KEYS = 40


async def write_rates() -> dict[str, Any]:
    body = {"operational": {"batch_size": 200, "gap_check_interval_hours": 1, "flags": ["a", "b"]}}
    with private_nats() as server:
        settings = LedgerSettings(nats_url=server.url)
        async with Ledger.connect(settings=settings) as led:
            await apply_streams(led.js, load_streams_file(REPO_ROOT / "streams.yaml"))
            services = [f"svc-{i}" for i in range(20)]
            for s in services:  # every service exists: sets patch existing documents
                await led.append(s, Replace(body), actor="bench", reason="seed")
            t_single = t_2 = t_20 = 0.0
            for r in range(ROUNDS):
                t = time.perf_counter()
                for i in range(SINGLES):
                    await led.append(services[i % 20], Patch({"n": i}), actor="bench", reason=f"r{r}")
                t_single += time.perf_counter() - t
                t = time.perf_counter()
                for i in range(SETS2):
                    pair = services[(2 * i) % 20: (2 * i) % 20 + 2]
                    await commit(led, [Member(s, Patch({"n": i})) for s in pair], actor="bench", reason=f"r{r}")
                t_2 += time.perf_counter() - t
                t = time.perf_counter()
                for i in range(SETS20):
                    await commit(led, [Member(s, Patch({"n": i})) for s in services], actor="bench", reason=f"r{r}")
                t_20 += time.perf_counter() - t
            # Floors: the server's own cost of an atomic batch (one message, commit only, no CAS)
            # beside a plain awaited publish of the same bytes.
            raw_batch = raw_pub = 0.0
            for _round in range(ROUNDS):
                t = time.perf_counter()
                for _ in range(50):
                    await led.js.publish(led.subject("floor"), b"{}", headers={
                        BATCH_ID: str(uuid.uuid4()), BATCH_SEQ: "1", BATCH_COMMIT: "1"})
                raw_batch += time.perf_counter() - t
                t = time.perf_counter()
                for _ in range(50):
                    await led.js.publish(led.subject("floor"), b"{}")
                raw_pub += time.perf_counter() - t
            schema_get = []
            for _ in range(300):
                t = time.perf_counter()
                await led.schema_in_force("svc-0")
                schema_get.append(time.perf_counter() - t)
    single = ROUNDS * SINGLES / t_single
    return {
        "single_writes_per_s": round(single, 1),
        "set2_events_per_s": round(ROUNDS * SETS2 * 2 / t_2, 1),
        "set2_sets_per_s": round(ROUNDS * SETS2 / t_2, 1),
        "set20_events_per_s": round(ROUNDS * SETS20 * 20 / t_20, 1),
        "set20_sets_per_s": round(ROUNDS * SETS20 / t_20, 1),
        "schema_in_force_lookup": summary_ms(schema_get),
        "floor_raw_batch_commit_ms": round(raw_batch / (ROUNDS * 50) * 1000, 2),
        "floor_raw_publish_ms": round(raw_pub / (ROUNDS * 50) * 1000, 2),
    }


def _history(kind: str, service: str) -> list[Event]:
    rnd = random.Random(7)
    doc = {f"key_{k:02d}": {"value": k, "enabled": True, "note": f"n{k}"} for k in range(KEYS)}
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[Event] = []
    prev: Event | None = None
    for v in range(1, VERSIONS + 1):
        if v == 1 or kind == "replace":
            if v > 1:
                key = f"key_{rnd.randrange(KEYS):02d}"
                doc = {**doc, key: {**doc[key], "value": v}}
            change: Any = Replace(doc)
        else:
            change = Patch({f"key_{rnd.randrange(KEYS):02d}": {"value": v}})
        prev = new_event(prev, service, change, actor=f"user{v % 7}", reason=f"change {v}",
                         occurred_at=t0 + timedelta(seconds=v), event_id=str(uuid.uuid4()))
        out.append(prev)
    return out


def _naive(rows: list[Any]) -> dict[str, int]:
    """The obvious blame: for each leaf of the last document, walk back while it is unchanged."""
    docs = [r["config"] for r in rows]
    out = {}
    for pointer, value in leaves(docs[-1]):
        parts = pointer.split("/")[1:]
        want = dumps(value)
        v = len(docs)
        while v > 1:
            node: Any = docs[v - 2]
            for p in parts:
                node = node.get(p) if isinstance(node, dict) else None
            if node is None or dumps(node) != want:
                break
            v -= 1
        out[pointer] = v
    return out


async def _documents(pool: Any, service: str) -> list[Any]:
    """Every version's whole document (what a naive blame reads)."""
    async with pool.acquire() as conn:
        return list(await conn.fetch(
            "SELECT config FROM config_versions WHERE service = $1 ORDER BY version", service))


def _fold(rows: list[Any], fold: Blame | None = None) -> Blame:
    fold = fold or Blame()
    for r in rows:
        origin = Origin(r["version"], r["occurred_at"], r["stored_at"], r["actor"], r["reason"], r["cs"])
        if r["kind"] == "patched":
            fold.advance_patch(r["version"], r["patch"], origin)
        else:
            fold.advance(r["version"], r["config"], origin)
    fold.lines()
    return fold


async def blame_latency() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with private_pg() as pg:
        url = pg.url()
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            for n, kind in enumerate(("patch", "replace")):
                events = _history(kind, f"blamed_{kind}")
                t0 = datetime(2026, 1, 1, tzinfo=UTC)
                rows = [version_row(e, i, t0 + timedelta(seconds=i))
                        for i, e in enumerate(events, start=n * VERSIONS + 1)]
                await conn.copy_records_to_table("config_versions", records=rows, columns=VERSION_COLUMNS)
        finally:
            await conn.close()
        pool = await create_pool(url, max_size=2, timeout=10)
        try:
            repo = ApiRepository(pool, timeout=30)
            for kind in ("patch", "replace"):
                service = f"blamed_{kind}"
                cold, fetch, fold_only, warm, naive = [], [], [], [], []
                for _ in range(3):
                    t = time.perf_counter()
                    fetched = await repo.blame_rows(service, 0, None)
                    t1 = time.perf_counter()
                    fold = _fold(fetched)
                    t2 = time.perf_counter()
                    cold.append(t2 - t)
                    fetch.append(t1 - t)
                    fold_only.append(t2 - t1)
                    if not naive:  # once: it is the slow one
                        t = time.perf_counter()
                        _naive(await _documents(pool, service))
                        naive.append(time.perf_counter() - t)
                # warm: the cached fold of version N-1, one new version fetched and folded
                base = _fold(fetched[:-1])
                for _ in range(20):
                    f = base.copy()  # the API's cached fold, one version behind
                    t = time.perf_counter()
                    new = await repo.blame_rows(service, f.version, None)
                    _fold(new, f)
                    warm.append(time.perf_counter() - t)
                results[kind] = {"cold": summary_ms(cold), "fetch_only": summary_ms(fetch),
                                 "fold_only": summary_ms(fold_only), "warm": summary_ms(warm),
                                 "naive_blame_baseline": summary_ms(naive), "versions": len(fetched),
                                 "leaves": len(fold.lines())}
        finally:
            await pool.close()
    return results


async def main() -> dict[str, Any]:
    rates = await write_rates()
    print(line("change sets of 2: service changes/s", rates["set2_events_per_s"], "ev/s",
               "single writes (same run)", rates["single_writes_per_s"]))
    print(line("change sets of 20: service changes/s", rates["set20_events_per_s"], "ev/s",
               "single writes (same run)", rates["single_writes_per_s"]))
    print(f"  sets/s: {rates['set2_sets_per_s']} (2 services), {rates['set20_sets_per_s']} (20 services); "
          f"schema lookup per write p50 {rates['schema_in_force_lookup']['p50_ms']} ms")
    print(f"  floor: a raw 1-message atomic batch {rates['floor_raw_batch_commit_ms']} ms vs a raw publish "
          f"{rates['floor_raw_publish_ms']} ms (the server's batch commit)")
    blame = await blame_latency()
    for kind, b in blame.items():
        print(line(f"blame 10k versions ({kind}) cold p50", b["cold"]["p50_ms"], "ms",
                   "naive blame, same rows", b["naive_blame_baseline"]["p50_ms"]))
        print(f"  fetch {b['fetch_only']['p50_ms']} ms + fold {b['fold_only']['p50_ms']} ms; "
              f"warm (cached fold + 1 version) p50 {b['warm']['p50_ms']} ms; {b['leaves']} leaves")
    result = {"writes": rates, "blame_10k": blame}
    write_results("safe", result)
    return result


if __name__ == "__main__":
    asyncio.run(main())
