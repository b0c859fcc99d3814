"""The projection loop: stand by for the leader lock, then apply the stream to PostgreSQL.

``await Projector(settings, instance="host:pid").run(stop)`` runs until ``stop`` is set (returns)
or a fail-stop (raises ``ProjectionDiverged`` after recording it in ``projector_status``).

As leader, one *session*:

1. load the checkpoint and every service's (version, hash) from PostgreSQL;
2. start-up checks: the stream's last sequence is not behind the checkpoint ("stream
   regression"), and the message at the checkpoint sequence is the event the projection applied
   there ("different event at an applied sequence");
3. a producer task reads from checkpoint + 1 (``StreamReader``), cuts batches of up to
   ``batch_size`` events or ``batch_delay_ms`` after the first, verifies each message
   (``verify_message``) and builds rows — while the writer commits the previous batch
   (``Repository.apply``), so parsing and PostgreSQL overlap;
4. a heartbeat task refreshes the status row every ~1 s (stream head, lag), re-checks for a
   stream regression, and steps down when a rebuild asks for the lock.

A verification failure ends the batch: the good rows before it are committed, then the reason and
sequence are recorded and ``run`` raises. On restart the same message is read again and refused
again. NATS or PostgreSQL errors end the session instead: everything is closed, and after a
capped exponential backoff the instance reconnects, waits for the lock and resumes from the
checkpoint — no row is written twice (see ``projector.repository``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.client import Client as NATS

from ledger import nats_io
from ledger.errors import LedgerError, ProjectionDiverged, Unavailable, UsageError
from ledger.event import Event
from ledger.fold import ChainState

from . import db, status
from .errors import OPERATOR_HINT, DatabaseRefused, DuplicateEvent, EventMismatch, StreamRegression
from .leader import LeaderLock
from .migrate import migrate
from .repository import Batch, ProjectionState, Repository
from .rows import changeset_remaining, version_row
from .settings import ProjectorSettings
from .stream import StreamReader, message_at, stream_head
from .verify import verify_message

__all__ = ["Projector", "Resources", "open_resources", "Backoff"]

log = logging.getLogger("projector")

_YIELD_EVERY = 10  # messages verified between two yields to the event loop (~0.6 ms of CPU)


@dataclass
class Resources:
    """One instance's connections: data (PostgreSQL), lock (PostgreSQL, dedicated), NATS."""

    conn: Any
    lock: LeaderLock
    nc: NATS


@contextlib.asynccontextmanager
async def open_resources(settings: ProjectorSettings, instance: str) -> AsyncIterator[Resources]:
    """Connect everything; close everything (gracefully, then forcefully) on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        conn = await db.connect(settings.database_url, application_name=f"projector {instance}")
        stack.push_async_callback(db.close, conn)
        lock_conn = await db.connect(
            settings.database_url, application_name=f"projector-lock {instance}"
        )
        stack.push_async_callback(db.close, lock_conn)
        nc = await nats_io.connect(
            settings.nats_url, name=f"projector {instance}", connect_timeout=settings.connect_timeout
        )
        stack.push_async_callback(_close_nats, nc)
        yield Resources(conn, LeaderLock(lock_conn), nc)


async def _close_nats(nc: NATS) -> None:
    if nc.is_closed:
        return
    try:
        await asyncio.wait_for(nc.close(), 2)
    except Exception:  # noqa: BLE001 - closing must not raise (server may be gone)
        pass


class Backoff:
    """Capped exponential backoff with jitter: 0.1, 0.2, 0.4 … ``cap`` seconds."""

    def __init__(self, cap: float, first: float = 0.1) -> None:
        self.cap, self.first, self._next = cap, first, first

    def reset(self) -> None:
        self._next = self.first

    async def wait(self, stop: asyncio.Event) -> None:
        delay = min(self._next, self.cap) * random.uniform(0.8, 1.0)
        self._next = min(self._next * 2, self.cap)
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives together with the wake-up (CPython gh-86296).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()


class _StepDown(Exception):
    """Internal: a rebuild asked for the leader lock."""


class Projector:
    """One projector instance (active or standby); see the module docstring."""

    def __init__(self, settings: ProjectorSettings, *, instance: str) -> None:
        self.settings = settings
        self.instance = instance
        self.applied_seq = 0  # last committed checkpoint of this instance's current session
        self.sessions = 0  # leader sessions started (for logs and tests)

    async def run(self, stop: asyncio.Event) -> None:
        """Project until ``stop`` is set; raise ProjectionDiverged on a fail-stop (recorded)."""
        backoff = Backoff(self.settings.retry_max_delay)
        while not stop.is_set():
            try:
                async with open_resources(self.settings, self.instance) as res:
                    await migrate(res.conn)
                    backoff.reset()
                    await self._serve(res, stop)
                    return
            except ProjectionDiverged:
                raise
            except (UsageError, DatabaseRefused):  # a setting to fix, not a retry
                raise
            except LedgerError as exc:  # Unavailable, LeadershipLost, refused statements
                log.warning("projector session ended: %s; retrying", exc)
                await backoff.wait(stop)

    async def _serve(self, res: Resources, stop: asyncio.Event) -> None:
        """Stand by for the lock, lead, and stand by again after a step-down."""
        while not stop.is_set():
            if not await res.lock.acquire(stop, poll=self.settings.lock_poll_interval):
                return
            log.info("%s is the active projector", self.instance)
            try:
                await self._lead(res, stop)
            except _StepDown:
                log.info("stepping down: a rebuild asked for the leader lock")
            finally:
                with contextlib.suppress(LedgerError):
                    await res.lock.release()

    # --- one leader session --------------------------------------------------------------------

    async def _lead(self, res: Resources, stop: asyncio.Event) -> None:
        self.sessions += 1
        repo = Repository(res.conn, stream=self.settings.stream, fence=res.lock.fence)
        try:
            state = await repo.load()
            self.applied_seq = state.checkpoint.last_seq
            anchor = await self._check_start(res.nc, repo, state)
            await status.mark_running(res.lock.conn, instance=self.instance)
            await self._project(res, repo, state, anchor, stop)
        except ProjectionDiverged as exc:
            await self._record_failure(res, exc)
            raise
        if stop.is_set():
            with contextlib.suppress(LedgerError):
                await status.set_state(res.lock.conn, "stopped", instance=self.instance)

    async def _check_start(
        self, nc: NATS, repo: Repository, state: ProjectionState
    ) -> tuple[int, bytes] | None:
        """Raise a fail-stop unless the stream still holds what the projection applied.

        Returns the (sequence, body) of the checkpoint's message: the reader's anchor.
        """
        cp = state.checkpoint.last_seq
        head = await stream_head(nc, self.settings.stream)
        if head.last_seq < cp:
            raise StreamRegression(
                f"stream regression: stream {self.settings.stream} ends at sequence {head.last_seq}, "
                f"behind the projection's checkpoint {cp} (events lost, or NATS_URL points at another store)",
                seq=cp,
            )
        if cp == 0:
            return None
        applied = await repo.event_id_at(cp)
        msg = await message_at(nc, self.settings.stream, self.settings.subject_wildcard, cp)
        if applied is None:
            raise EventMismatch(f"the projection has no row at its own checkpoint {cp}", seq=cp)
        if msg is None or msg.seq != cp:
            raise EventMismatch(
                f"different event at an applied sequence: the stream has no event at sequence {cp}, "
                f"where the projection applied {applied}",
                seq=cp,
            )
        try:
            found = Event.from_bytes(msg.data).event_id
        except LedgerError:
            found = "a message that is not an event"
        if found != applied:
            raise EventMismatch(
                f"different event at an applied sequence: the stream holds {found} at sequence {cp}, "
                f"the projection applied {applied} there",
                seq=cp,
            )
        return cp, msg.data

    async def _project(
        self,
        res: Resources,
        repo: Repository,
        state: ProjectionState,
        anchor: tuple[int, bytes] | None,
        stop: asyncio.Event,
    ) -> None:
        s = self.settings
        queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=2)
        async with StreamReader(
            res.nc,
            stream=s.stream,
            subject=s.subject_wildcard,
            start_seq=state.checkpoint.last_seq + 1,
            high_water=max(4 * s.batch_size, 4000),
            pull_size=max(s.batch_size, 1000),
            anchor=anchor,
        ) as reader:
            producer = asyncio.create_task(self._produce(reader, dict(state.chains), queue, state))
            beat_stop = asyncio.Event()
            beat = asyncio.create_task(self._heartbeat(res, beat_stop))
            try:
                while True:
                    batch = await self._next_batch(queue, producer, beat, stop)
                    if batch is None:
                        return
                    await self._apply(repo, batch)
                    if batch.failure is not None:
                        raise batch.failure
            finally:
                producer.cancel()  # it does no PostgreSQL I/O
                # Bounded: a producer that missed its cancellation must not hang the runner.
                await asyncio.wait({producer}, timeout=5)
                await self._stop_heartbeat(beat, beat_stop)

    async def _stop_heartbeat(self, beat: asyncio.Task[None], beat_stop: asyncio.Event) -> None:
        """Let the heartbeat finish its round: cancelling it in the middle of a statement would
        leave the lock connection busy with the cancellation when we next need it."""
        beat_stop.set()
        try:
            async with asyncio.timeout(self.settings.heartbeat_interval + 10):
                await asyncio.shield(beat)
        except TimeoutError:
            beat.cancel()
            with contextlib.suppress(BaseException):
                await beat
        except BaseException:  # noqa: BLE001 - its error was already reported by _next_batch
            pass

    async def _next_batch(
        self,
        queue: asyncio.Queue[Batch],
        producer: asyncio.Task[None],
        beat: asyncio.Task[None],
        stop: asyncio.Event,
    ) -> Batch | None:
        """The next verified batch, or None when asked to stop; re-raises a helper task's error."""
        get: asyncio.Task[Batch] = asyncio.create_task(queue.get())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({get, producer, beat, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        for task in (beat, producer):
            if task.done():
                task.result()  # raises its error (or _StepDown)
                raise LedgerError("projector helper task ended unexpectedly")
        return None

    async def _produce(
        self,
        reader: StreamReader,
        chains: dict[str, ChainState],
        queue: asyncio.Queue[Batch],
        state: ProjectionState,
    ) -> None:
        """Read, verify and build rows, one batch ahead of the writer."""
        s = self.settings
        prefix = s.subject_prefix
        prev = state.checkpoint.last_seq
        while True:
            msgs = await reader.batch(s.batch_size, s.batch_delay)
            batch = Batch(prev)
            rows = batch.rows
            open_set = 0  # members of the last event's change set still to come
            i = 0
            while i < len(msgs):
                m = msgs[i]
                i += 1
                try:
                    event, chain = verify_message(chains, prefix, m.subject, m.seq, m.data)
                except ProjectionDiverged as exc:
                    batch.failure = exc
                    if open_set:  # commit no part of a change set
                        size = rows[-1].changeset_id
                        while rows and rows[-1].changeset_id == size:
                            rows.pop()
                    break
                chains[event.service] = chain
                rows.append(version_row(event, m.seq, m.stored_at))
                open_set = changeset_remaining(rows, event.changeset_size)
                if i == len(msgs) and open_set:
                    # A change set is applied in one transaction: never cut a batch inside one
                    # (its members sit on consecutive sequences, all stored at once).
                    msgs.extend(await reader.batch(open_set, s.batch_delay))
                if i % _YIELD_EVERY == 0:
                    # Verifying is CPU work: let the writer's round trips to PostgreSQL (and the
                    # reader's deliveries) proceed in between, or they would wait a whole batch.
                    await asyncio.sleep(0)
            await queue.put(batch)
            if batch.failure is not None:
                return
            prev = batch.last_seq

    async def _apply(self, repo: Repository, batch: Batch) -> None:
        try:
            await repo.apply(batch)
        except DuplicateEvent:
            found = await repo.first_duplicate(batch.rows)
            if found is None:
                raise
            index, why = found
            await repo.apply(batch.prefix(index))
            if index:
                self.applied_seq = batch.rows[index - 1].stream_seq
            raise DuplicateEvent(why, seq=batch.rows[index].stream_seq) from None
        if batch.rows:
            self.applied_seq = batch.last_seq

    async def _heartbeat(self, res: Resources, beat_stop: asyncio.Event) -> None:
        """Every ~1 s: stream head and lag into the status row; regression and rebuild checks."""
        s = self.settings
        while not beat_stop.is_set():
            head_seq: int | None = None
            head_at: datetime | None = None
            pending_since: datetime | None = None
            # Read what we had applied *before* asking for the head: batches applied while the
            # head request is in flight must not make a healthy stream look behind us.
            applied_before = self.applied_seq
            try:
                head = await stream_head(res.nc, s.stream, timeout=2.0)
                head_seq, head_at = head.last_seq, head.last_at
                if head.last_seq > self.applied_seq:
                    first = await message_at(res.nc, s.stream, s.subject_wildcard, self.applied_seq + 1, timeout=2.0)
                    # None: only messages the projector does not read (schemas) are ahead.
                    pending_since = first.stored_at if first is not None else None
            except Unavailable as exc:
                log.debug("heartbeat: NATS did not answer: %s", exc)
            if head_seq is not None and head_seq < applied_before:
                raise StreamRegression(
                    f"stream regression: stream {s.stream} now ends at sequence {head_seq}, behind "
                    f"the projection's checkpoint {applied_before}",
                    seq=applied_before,
                )
            # The lock connection doubles as the liveness check of the lock session.
            await status.heartbeat(
                res.lock.conn,
                instance=self.instance,
                stream_last_seq=head_seq,
                stream_last_at=head_at,
                pending_since=pending_since,
            )
            if await res.lock.rebuild_pending():
                raise _StepDown()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(s.heartbeat_interval):
                    await beat_stop.wait()

    async def _record_failure(self, res: Resources, exc: ProjectionDiverged) -> None:
        reason = f"{exc.message}. {OPERATOR_HINT}"
        log.error("fail-stop at stream sequence %s: %s", exc.seq, exc.message)
        # The lock connection first: the data connection may be the one that just failed.
        last: LedgerError | None = None
        for conn in (res.lock.conn, res.conn):
            try:
                await status.record_failure(conn, reason=reason, seq=exc.seq, instance=self.instance)
                return
            except LedgerError as err:
                last = err
        assert last is not None
        raise last
