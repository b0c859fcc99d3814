"""``StreamFollower``: the API follows the stream itself — current documents in memory, SSE fan-out.

One ordered consumer (``ledger.watch.StreamWatcher``) on every service's subject: first the last
message of each subject (``LAST_PER_SUBJECT``: every service's current document), then live, in
stream order. The follower keeps

- ``seq``: the stream sequence it has applied up to (what ``wait_for`` compares with);
- the current document of every service, with its serialised GET body (``CachedConfig``);
- the last ``history`` versions of every service it saw arrive in order (the SSE catch-up; older
  versions are read from the stream by the watch itself);
- the SSE watchers of each service (an ``asyncio.Event`` set when the service changes).

Read-your-writes needs nothing else: a write is acknowledged by JetStream with its stream
sequence; a read on the same process waits (briefly) until ``seq`` reaches the sequence it must
reflect, or reads the subject's last message directly. PostgreSQL is not involved.

Events this process appended are not parsed again: the ledger's own hint (``Ledger.known``)
already holds the event stored at that sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable

from ledger import Entry, Ledger
from ledger.errors import LedgerError
from ledger.event import Event
from ledger.nats_io import StoredMsg
from ledger.watch import StreamWatcher

from .cache import CachedConfig
from .repository import Version
from .views import version_from_entry

__all__ = ["StreamFollower"]

log = logging.getLogger("api.follower")


class StreamFollower:
    """The stream, followed in order: current documents, recent versions, watchers, waiters."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        history: int = 64,
        on_applied: Callable[[int], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.history = history
        self.on_applied = on_applied
        self.seq = 0  # stream sequence applied up to (0: nothing yet)
        self.caught_up = False  # the initial load (every subject's last message) is done
        self.last_error: str | None = "not started"
        self.skipped = 0  # messages that were not events (logged, never fatal)
        self._current: dict[str, CachedConfig] = {}
        self._recent: dict[str, deque[Version]] = {}
        self._subs: dict[str, set[asyncio.Event]] = {}
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._closing = False
        self._caught_up_event = asyncio.Event()
        self._watcher = StreamWatcher(ledger.nc, ledger.settings, ledger.settings.subject_wildcard)
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, wait: float = 0.0) -> None:
        """Start following; wait up to ``wait`` seconds for the initial load."""
        self._task = asyncio.create_task(self._run(), name="stream-follower")
        if wait > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._caught_up_event.wait(), wait)

    def reconnected(self) -> None:
        """NATS is back: re-subscribe after ``seq`` now (not after missed heartbeats)."""
        self._watcher.reconnected()

    def end_watches(self) -> None:
        self._closing = True
        self.wake_all_watchers()

    async def close(self) -> None:
        self.end_watches()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._release_waiters(all_=True)

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def live(self) -> bool:
        """Loaded, and the connection is up (so ``seq`` keeps moving)."""
        return self.caught_up and self.ledger.nc.is_connected

    # --- reads -------------------------------------------------------------------------------

    def get(self, service: str) -> CachedConfig | None:
        return self._current.get(service)

    def entries(self) -> list[CachedConfig]:
        return [self._current[k] for k in sorted(self._current)]

    def versions_after(self, service: str, last: int) -> list[Version] | None:
        """The versions of ``service`` after ``last`` that arrived in order, oldest first;
        None when the oldest one kept is newer than ``last + 1`` (read the stream instead)."""
        recent = self._recent.get(service)
        if not recent:
            return []
        if recent[-1].version <= last:
            return []
        if recent[0].version > last + 1:
            return None
        return [v for v in recent if v.version > last]

    def version(self, service: str, version: int) -> Version | None:
        """A recent version of ``service`` if it is still kept in memory."""
        for v in reversed(self._recent.get(service, ())):
            if v.version == version:
                return v
        return None

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """True once the follower has applied stream sequence ``seq``; False after ``timeout``."""
        if self.seq >= seq:
            return True
        if timeout <= 0 or self._closing:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = (seq, next(self._counter), fut)
        heapq.heappush(self._waiters, item)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            if not fut.done():
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(item)
                    heapq.heapify(self._waiters)
        return self.seq >= seq

    def _release_waiters(self, *, all_: bool = False) -> None:
        waiters = self._waiters
        while waiters and (all_ or waiters[0][0] <= self.seq):
            _, _, fut = heapq.heappop(waiters)
            if not fut.done():
                fut.set_result(None)

    # --- SSE fan-out -------------------------------------------------------------------------

    def subscribe(self, service: str) -> asyncio.Event:
        """An event set whenever ``service`` changes (and on shutdown); the watcher clears it."""
        event = asyncio.Event()
        self._subs.setdefault(service, set()).add(event)
        return event

    def unsubscribe(self, service: str, event: asyncio.Event) -> None:
        subs = self._subs.get(service)
        if subs is not None:
            subs.discard(event)
            if not subs:
                del self._subs[service]

    @property
    def watchers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def wake_all_watchers(self) -> None:
        for subs in self._subs.values():
            for event in subs:
                event.set()

    # --- the loop ----------------------------------------------------------------------------

    def _entry_of(self, msg: StoredMsg) -> Entry:
        service = self.ledger.settings.service_of(msg.subject)
        known = self.ledger.known(service)
        if known is not None and known[0] == msg.seq:
            return Entry(known[1], msg.seq, msg.stored_at)  # appended here: already parsed
        return Entry(Event.from_bytes(msg.data), msg.seq, msg.stored_at)

    def apply(self, msg: StoredMsg) -> None:
        """Take one stored message (in stream order)."""
        try:
            entry = self._entry_of(msg)
        except LedgerError as exc:
            self.skipped += 1
            log.error("stream sequence %d on %s is not an event (%s); skipped", msg.seq, msg.subject, exc)
        else:
            self._take(entry)
        self.seq = msg.seq
        if self._waiters:
            self._release_waiters()

    def _take(self, entry: Entry) -> None:
        v = version_from_entry(entry)
        service = v.service
        old = self._current.get(service)
        if old is None or old.version.stream_seq < entry.seq:
            self._current[service] = CachedConfig.of(v)
        recent = self._recent.get(service)
        if recent is None:
            recent = self._recent[service] = deque(maxlen=self.history)
        elif recent and recent[-1].version + 1 != v.version:
            recent.clear()  # not contiguous (first load, or a skipped message): start again
        recent.append(v)
        for event in self._subs.get(service, ()):
            event.set()

    def _loaded(self) -> None:
        if not self.caught_up:
            self.caught_up = True
            self._caught_up_event.set()
            log.info("following the stream from sequence %d (%d services)", self.seq, len(self._current))
        self.last_error = None
        if self.on_applied is not None:
            self.on_applied(self.seq)

    async def _run(self) -> None:
        while not self._closing:
            try:
                async for msg in self._watcher:
                    if msg is None:
                        self._loaded()
                    else:
                        self.apply(msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug: log it and follow again from where we are
                log.exception("stream follower failed; following again after %d", self.seq)
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._watcher = StreamWatcher(
                    self.ledger.nc, self.ledger.settings, self.ledger.settings.subject_wildcard,
                    after_seq=self.seq if self.caught_up else None,
                )
                await asyncio.sleep(0.1)
