"""Ledger append rate vs raw awaited ``js.publish`` with the same CAS + msg-id headers.

Both run against one private nats-server with the shipped ``sync_interval: always``, in the
same process, interleaved in rounds so machine noise hits both alike. Also: ``current()`` and
``at()`` latency. Run: ``python -m bench.bench_ledger`` (or ``make bench``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from ledger import Ledger, LedgerSettings, Replace
from ledger.nats_io import EXPECTED_LAST_SUBJECT_SEQ, MSG_ID
from ledger.streams import apply_streams, load_streams_file
from ops.embedded import REPO_ROOT

from .common import line, private_nats, summary_ms, write_results

ROUNDS, PER_ROUND = 5, 300


async def main() -> dict:
    with private_nats() as server:
        settings = LedgerSettings(nats_url=server.url)
        async with Ledger.connect(settings=settings) as led:
            await apply_streams(led.js, load_streams_file(REPO_ROOT / "streams.yaml"))
            body = {"operational": {"batch_size": 200, "gap_check_interval_hours": 1, "flags": ["a", "b"]}}
            ledger_s = raw_s = 0.0
            raw_seq = 0
            # the raw floor publishes bytes of the same size as a real event
            sample = (await led.append("sample", Replace(body), actor="bench", reason="r0 i0")).event.to_bytes()
            for r in range(ROUNDS):
                # raw: the floor - one awaited publish carrying the same headers, no read/decide
                payload = Replace(body)
                data = led.settings.subject("raw")
                t = time.perf_counter()
                for _ in range(PER_ROUND):
                    ack = await led.js.publish(
                        data, sample,
                        headers={MSG_ID: str(uuid.uuid4()), EXPECTED_LAST_SUBJECT_SEQ: str(raw_seq)},
                    )
                    raw_seq = ack.seq
                raw_s += time.perf_counter() - t
                t = time.perf_counter()
                for i in range(PER_ROUND):
                    await led.append("bench", payload, actor="bench", reason=f"r{r} i{i}")
                ledger_s += time.perf_counter() - t
            n = ROUNDS * PER_ROUND
            ledger_rate, raw_rate = n / ledger_s, n / raw_s

            cur, at = [], []
            instant = datetime.now(UTC)
            for _ in range(500):
                t = time.perf_counter()
                await led.current("bench")
                cur.append(time.perf_counter() - t)
                t = time.perf_counter()
                await led.at("bench", instant)
                at.append(time.perf_counter() - t)
            raw_get = []
            for _ in range(500):
                t = time.perf_counter()
                await led.js.get_last_msg(settings.stream, settings.subject("bench"), direct=True)
                raw_get.append(time.perf_counter() - t)
    result = {
        "append_per_s": round(ledger_rate, 1),
        "raw_publish_per_s": round(raw_rate, 1),
        "ratio": round(ledger_rate / raw_rate, 3),
        "target_ratio": 0.85,
        "current": summary_ms(cur),
        "at": summary_ms(at),
        "raw_direct_get_last": summary_ms(raw_get),
    }
    print(line("ledger append (sequential)", ledger_rate, "ops/s", "raw js.publish CAS+msg-id", raw_rate, ">= 0.85"))
    print(line("current() p99", result["current"]["p99_ms"], "ms", "raw direct get p99", result["raw_direct_get_last"]["p99_ms"]))
    print(line("at() p99", result["at"]["p99_ms"], "ms", "raw direct get p99", result["raw_direct_get_last"]["p99_ms"]))
    print(f"  current p50 {result['current']['p50_ms']} ms, at p50 {result['at']['p50_ms']} ms")
    write_results("ledger", result)
    return result


if __name__ == "__main__":
    asyncio.run(main())
