"""``ConfigHolder``: what a ``ConfigClient`` holds, and the one rule for taking a new snapshot.

Pure state, no I/O of its own (the LKG writer and the notifier it is given queue work)::

    holder = ConfigHolder("billing", safe_defaults={...}, cache_ttl=300)
    holder.offer(Snapshot(4, {...}, Source.API))   # True: version 4 taken, callbacks queued
    holder.offer(Snapshot(3, {...}, Source.API))   # False: versions only move forward

Taking a snapshot, in order:

1. Versions only move forward: a version at or below the highest one taken (deletions
   included) is ignored (it may confirm an LKG config as current).
2. No config (a deletion, an unknown service) means the safe defaults.
3. Every acceptance check runs (``checks``: the bound models, and any check a caller adds);
   one that raises ``InvalidConfig`` rejects the snapshot as a whole.
4. The snapshot becomes the state; the LKG file is written (stream and API snapshots); the
   ``accepted`` hooks run; the callbacks and bound models are notified, in that order.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from ledger.errors import InvalidConfig

from .binding import Bound
from .lkg import LkgWriter
from .notify import Callback, Notifier
from .snapshot import Snapshot, Source

__all__ = ["Check", "ConfigHolder"]

log = logging.getLogger("client")

#: ``check(config, version)`` raises InvalidConfig to reject a config before it is taken.
Check = Callable[[dict[str, Any], int | None], None]

_AUTHORITATIVE = (Source.STREAM, Source.API)


class ConfigHolder:
    """The current snapshot, the version high-water mark, freshness, and who to tell."""

    def __init__(
        self,
        service: str,
        safe_defaults: dict[str, Any] | None,
        *,
        cache_ttl: float,
        lkg_writer: LkgWriter | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.service = service
        self.safe_defaults = copy.deepcopy(safe_defaults) if safe_defaults is not None else None
        self.cache_ttl = cache_ttl
        self.lkg_writer = lkg_writer
        self.notifier = notifier if notifier is not None else Notifier()
        self.callbacks: list[Callback] = []
        self.bindings: list[Bound[Any]] = []
        self.checks: list[Check] = []  # extra acceptance checks (e.g. a JSON schema)
        self.accepted: list[Callable[[Snapshot], None]] = []  # run after a snapshot is taken
        # The fleet's hooks (client.fleet): swap in a rollout's candidate before a snapshot is
        # taken, hear of a rejection, and report (or revert) once an update's callbacks ran.
        self.overlay: Callable[[Snapshot], Snapshot] | None = None
        self.on_rejected: Callable[[Snapshot, str], None] | None = None
        self.after_apply: Callable[[Snapshot, Snapshot], Callable[[list[str]], None]] | None = None
        self.state = self.defaults(None, None, None)
        self.high_water: int | None = None  # highest version taken (deletions included)
        self.fresh_until = 0.0  # monotonic time the config stops being fresh
        self.retry_at = 0.0  # no new attempt at a failed hub before this monotonic time

    # --- freshness ------------------------------------------------------------------------------

    def touch(self) -> None:
        """An authoritative source just answered: the config is fresh for one TTL."""
        self.fresh_until = time.monotonic() + self.cache_ttl
        self.retry_at = 0.0

    def failed(self, retry_in: float) -> None:
        """The hub failed: do not ask again for ``retry_in`` seconds (at most one TTL)."""
        self.retry_at = time.monotonic() + min(self.cache_ttl, retry_in)

    def due(self) -> bool:
        """The cached config is stale and no failed attempt is being waited out."""
        now = time.monotonic()
        return now >= self.fresh_until and now >= self.retry_at

    # --- taking a snapshot ----------------------------------------------------------------------

    def defaults(self, version: int | None, updated_at: datetime | None, seq: int | None) -> Snapshot:
        config = copy.deepcopy(self.safe_defaults) if self.safe_defaults is not None else None
        return Snapshot(version, config, Source.DEFAULTS, updated_at, seq)

    def confirm(self, source: Source) -> None:
        """A source says what the holder has is current (HTTP 304)."""
        self.offer(replace(self.state, source=source))

    def offer(self, snap: Snapshot, force: bool = False) -> bool:
        """Take ``snap`` if it moves the config forward; True when the config changed.

        ``force`` (a rollout's candidate in or out) takes it whatever its version."""
        if not force and self.overlay is not None:
            snap = self.overlay(snap)
        state = self.state
        if snap.source in _AUTHORITATIVE:
            self.touch()
        if not force and snap.version is not None and self.high_water is not None and snap.version <= self.high_water:
            if snap.version == state.version and state.source is Source.LKG and snap.source is not Source.LKG:
                self.state = replace(state, source=snap.source, seq=snap.seq)  # confirmed current
            return False
        if snap.config is None:
            if snap.version is None and state.source is Source.DEFAULTS:
                return False  # "no config" while already on the defaults
            new = self.defaults(snap.version, snap.updated_at, snap.seq)
        else:
            new = snap
        models = self._check(new)
        if models is None:
            return False
        self._take(new, snap, models, force)
        return True

    def _check(self, new: Snapshot) -> list[Any] | None:
        """The bound models' values for ``new``; None when a check rejects it."""
        if new.config is None:
            return [None] * len(self.bindings)
        if new.source is Source.DEFAULTS:  # checked by bind()
            return [bound.validate(new.config, None) for bound in self.bindings]
        try:
            for check in self.checks:
                check(new.config, new.version)
            return [bound.validate(new.config, new.version) for bound in self.bindings]
        except InvalidConfig as exc:
            log.error(
                "rejected version %s of %s from %s: %s", new.version, self.service, new.source.value, exc.message
            )
            if self.on_rejected is not None:
                self.on_rejected(new, exc.message)
            return None

    def _take(self, new: Snapshot, snap: Snapshot, models: list[Any], force: bool = False) -> None:
        previous, self.state = self.state, new
        if new.version is not None:
            self.high_water = new.version if force else max(self.high_water or 0, new.version)
        if self.lkg_writer is not None and snap.source in _AUTHORITATIVE:
            self.lkg_writer.submit(snap)
        for hook in self.accepted:
            hook(new)
        calls: list[tuple[Callback, Any]] = []
        if self.callbacks:
            argument = new.config if new.config is not None else {}
            calls = [(callback, copy.deepcopy(argument)) for callback in self.callbacks]
        for bound, model in zip(self.bindings, models, strict=True):
            calls.extend(bound._set(model, new.version))
        done = self.after_apply(new, previous) if self.after_apply is not None else None
        self.notifier.submit(calls, f"{self.service} version {new.version} from {snap.source.value}", done)
        log.info("config of %s is now version %s (%s)", self.service, new.version, new.source.value)

    def revert(self, new: Snapshot, previous: Snapshot) -> None:
        """A callback raised on ``new``: keep ``previous`` (the callbacks are not called again)."""
        if self.state is not new:
            return
        self.state, self.high_water = previous, previous.version
        for bound in self.bindings:
            model = bound.validate(previous.config, previous.version) if previous.config is not None else None
            bound._set(model, previous.version)
        log.warning("config of %s stays version %s: version %s was rejected", self.service,
                    previous.version, new.version)

    # --- binding --------------------------------------------------------------------------------

    def bind(self, bound: Bound[Any]) -> None:
        """Add ``bound`` to the acceptance check; InvalidConfig if what is held does not validate."""
        if self.safe_defaults is not None:
            bound.validate(self.safe_defaults, None)
        state = self.state
        value = bound.validate(state.config, state.version) if state.config is not None else None
        bound._set(value, state.version)
        self.bindings.append(bound)
