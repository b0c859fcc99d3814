"""``StreamFollower``: one service's stream messages -> snapshots, with version-gap tracking.

Pure (no I/O): it is given each message the watcher delivers and says what to offer::

    follower = StreamFollower("billing")
    snap = follower.take(msg, resync=watcher.resync)   # a Snapshot, or None (skipped/resyncing)

A message is skipped (logged) when it is not an event, names another service, or its hash
does not recompute. A version gap (5 after 3) asks the watcher to re-read from the sequence
after the last one seen, once; if the re-read shows the same gap, the stream itself skips
versions: that is logged and the event taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ledger import Entry
from ledger.errors import LedgerError
from ledger.nats_io import StoredMsg

from .snapshot import Snapshot

__all__ = ["StreamFollower"]

log = logging.getLogger("client")


class StreamFollower:
    """What the stream delivered last (accepted or not), for gap detection."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.seen_version: int | None = None
        self.seen_seq: int | None = None
        self._resynced_from: int | None = None

    @property
    def empty(self) -> bool:
        """Nothing was delivered yet (at the caught-up marker: the subject has no event)."""
        return self.seen_seq is None

    def take(self, msg: StoredMsg, resync: Callable[[int], None]) -> Snapshot | None:
        """The snapshot ``msg`` carries, or None when it is skipped or a re-read was asked."""
        try:
            entry = Entry.from_stored(msg)
        except LedgerError as exc:
            self._skip(msg, exc.message)
            return None
        event = entry.event
        if event.service != self.service:
            self._skip(msg, f"an event of {event.service!r}")
            return None
        if not event.hash_ok():
            log.error(
                "rejected version %d of %s (stream sequence %d): its hash does not recompute",
                event.version, self.service, msg.seq,
            )
            self.seen_seq = msg.seq
            return None
        seen = self.seen_version
        if seen is not None and self.seen_seq is not None and event.version > seen + 1:
            if self._resynced_from != self.seen_seq:
                log.warning(
                    "version gap on %s: %d after %d; re-reading from stream sequence %d",
                    msg.subject, event.version, seen, self.seen_seq + 1,
                )
                self._resynced_from = self.seen_seq
                resync(self.seen_seq)
                return None
            log.warning("the stream itself skips from version %d to %d on %s", seen, event.version, msg.subject)
        self.seen_version = max(seen or 0, event.version)
        self.seen_seq = msg.seq
        return Snapshot.from_entry(entry)

    def _skip(self, msg: StoredMsg, why: str) -> None:
        log.error("skipping stream sequence %d on %s: %s", msg.seq, msg.subject, why)
        self.seen_seq = msg.seq
