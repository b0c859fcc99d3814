"""``FleetMember``: a ``ConfigClient``'s part in the fleet (acknowledgements and staged rollouts).

It installs three hooks on the client's ``ConfigHolder``: ``overlay`` (every snapshot, before it
is taken: the stage gate may swap in a rollout's candidate), ``on_rejected`` (a check refused a
document) and ``after_apply`` (the callbacks of an update ran: report ``applied``, or
``rejected`` and revert). ``start_nats`` / ``start_http`` begin reporting (with NATS it also
follows the service's rollouts); the client's ``Sources`` call them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from nats.aio.client import Client as NATS

from ledger import LedgerSettings
from ledger.errors import LedgerError
from ledger.fleet_events import FleetEvent
from ledger.fleet_log import FleetLog
from ledger.watch import StreamWatcher

from .acks import AckReporter, http_publisher
from .holder import ConfigHolder
from .snapshot import Snapshot, Source
from .stage_gate import StageGate

__all__ = ["FleetMember"]

log = logging.getLogger("client.fleet")

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


class FleetMember:
    def __init__(self, holder: ConfigHolder, service: str, instance: str | None,
                 labels: Mapping[str, str] | None, heartbeat_s: float) -> None:
        self.holder = holder
        holder.overlay, holder.on_rejected, holder.after_apply = self.overlay, self.rejected, self.after_apply
        self.acks = AckReporter(service, instance, labels, heartbeat_s)
        self.gate = StageGate(service, self.acks.instance, self.acks.labels)
        self.rollout: str | None = None  # the rollout whose candidate the client runs now

    @property
    def instance_id(self) -> str:
        return self.acks.instance

    # --- hooks called by ConfigClient ------------------------------------------------------------

    def overlay(self, snap: Snapshot) -> Snapshot:
        return self.gate.take_base(snap) if snap.source is Source.STREAM else snap

    def rejected(self, snap: Snapshot, error: str) -> None:
        rollout = self.gate.rollout_of(snap)
        if rollout is not None:
            self.gate.rejected.add(rollout)
        self.acks.report(snap.version, rollout, "rejected", error)

    def after_apply(self, new: Snapshot, previous: Snapshot) -> Callable[[list[str]], None]:
        rollout = self.gate.rollout_of(new)
        self.rollout = rollout

        def done(errors: list[str]) -> None:
            if errors:
                self.rejected(new, "; ".join(errors))
                if self.rollout == rollout:
                    self.rollout = self.gate.rollout_of(previous)
                self.holder.revert(new, previous)
                return
            self.acks.report(new.version, rollout, "applied")

        return done

    def start_nats(self, nc: NATS, settings: LedgerSettings, spawn: Spawn) -> None:
        self.acks.staged = True
        spawn(self.acks.run(FleetLog(nc, settings).publish_ack), "config-acks")
        spawn(self._follow_rollouts(nc, settings), "config-rollouts")

    def start_http(self, base_url: str, token: str | None, timeout: float, spawn: Spawn) -> None:
        spawn(self.acks.run(http_publisher(base_url, token, timeout)), "config-acks")

    # --- following the service's rollouts ------------------------------------------------------

    async def _follow_rollouts(self, nc: NATS, settings: LedgerSettings) -> None:
        watcher = StreamWatcher(nc, settings, settings.rollout_subject(self.acks.service))
        async for item in watcher:
            if item is None:
                continue
            try:
                event = FleetEvent.from_bytes(item.data)
            except LedgerError as exc:
                log.error("skipping fleet event at stream sequence %d: %s", item.seq, exc.message)
                continue
            if not event.hash_ok():
                log.error("skipping fleet event #%d of %s: its hash does not recompute", event.seq, event.service)
                continue
            self._follow(self.gate.take_fleet(event))

    def _follow(self, wanted: Snapshot | None) -> None:
        if wanted is None:
            return
        state = self.holder.state
        if self.gate.rollout_of(wanted) != self.rollout or wanted.version != state.version:
            self.holder.offer(wanted, force=True)  # into the candidate, or back to the base
        elif self.acks.last is None or self.acks.last.status != "applied" or self.acks.last.rollout != self.rollout:
            self.acks.report(state.version, self.rollout, "applied")  # e.g. after an abort
