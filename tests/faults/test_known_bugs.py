"""Deterministic reproductions of bugs the fault scenarios found in other packages (now fixed).

Each was ``xfail(strict=True)`` while its bug was open; both are fixed and stay as regression
tests.
"""

from __future__ import annotations

import asyncio

from projector.stream import StreamReader
from tests.support.waiting import wait_for

PROJECTOR_HANG = (
    "projector bug: StreamReader._wait (projector/stream.py:229-232) waits with asyncio.wait_for, "
    "which on Python 3.11 swallows a cancellation that arrives in the same loop iteration as the "
    "wake-up (CPython gh-86296). Projector._project (projector/runner.py:243-248, the finally "
    "block that cancels the producer and then awaits it without a bound) then waits forever for a producer "
    "that went on and blocked in queue.put(): after PostgreSQL dies mid-batch the projector hangs "
    "- no heartbeat, no reconnect, no log line - and the projection stops (seen in "
    "s04_projector_pg_crash; use asyncio.timeout() in _wait and bound the await in _project)"
)


async def test_stream_reader_wait_is_cancellable_when_a_message_arrives_at_the_same_time() -> None:
    reader = StreamReader.__new__(StreamReader)  # no NATS needed for the wait itself
    reader._wakeup = asyncio.Event()
    task = asyncio.create_task(reader._wait(30))
    await wait_for(lambda: reader._wakeup._waiters, timeout=5, what="the reader to wait")  # type: ignore[attr-defined]
    reader._wakeup.set()  # a message arrives ...
    task.cancel()  # ... as the projector cancels its producer (PostgreSQL went away)
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done, "the wait neither returned nor was cancelled"
    assert task.cancelled(), "the cancellation was swallowed: _wait returned normally"


API_STALE_READ = (
    "API bug: ConfigReader._from_postgres (api/reads.py:83-86) reads the config_current row and "
    "then, in a second statement (another pool connection), the projector's checkpoint; "
    "ConfigReader.current (api/reads.py:79) then serves the row because the *later* checkpoint "
    "covers the newest acknowledged write. A batch committed between the two reads makes a stale "
    "row look current: a read after an acknowledged write returns the previous version "
    "(read-your-writes broken while the projection feed is down, e.g. after a PostgreSQL restart; "
    "seen in s04_projector_pg_crash). Read the checkpoint first, or both in one statement."
)


async def test_read_while_the_feed_is_down_sees_the_acknowledged_write() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from api.reads import ConfigReader
    from api.repository import Version

    t = datetime(2026, 1, 1, tzinfo=UTC)

    def version(n: int, seq: int) -> Version:
        return Version("svc", n, "replaced", None, {"n": n}, "t", "", t, t, seq, None, None, "h")

    class Repo:
        checkpoint = 919  # version 457 at stream sequence 919 is applied

        async def current(self, service: str) -> Version:
            row = version(457, 919)
            self.checkpoint = 921  # the projector commits version 458 (seq 921) right now
            return row

        async def status(self) -> SimpleNamespace:
            return SimpleNamespace(last_applied_seq=self.checkpoint, last_seq=self.checkpoint)

    from ledger.errors import Unavailable

    # The follower has not loaded and NATS is down: PostgreSQL is the only source left.
    follower = SimpleNamespace(caught_up=False, seq=0)
    feed = SimpleNamespace(live=False, seq=-1)
    ledger = SimpleNamespace(nc=SimpleNamespace(is_connected=False), known=lambda service: None)
    metrics = SimpleNamespace(stream_fallbacks=SimpleNamespace(inc=lambda: None))
    reader = ConfigReader(follower, feed, Repo(), ledger, metrics, wait=0)  # type: ignore[arg-type]
    reader.note_ack("svc", 921)  # this process acknowledged version 458 at sequence 921
    try:
        read = await reader.current("svc")
    except Unavailable:
        return  # right: the stale row was not served
    assert read.entry is not None
    assert read.entry.version.version >= 458, (
        f"read returned version {read.entry.version.version} after version 458 was acknowledged")
