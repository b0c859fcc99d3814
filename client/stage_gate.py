"""The client side of staged rollouts: which document this instance should run.

``StageGate`` holds the service's fleet state (the last event of ``config.rollouts.<service>``)
and the latest *base* snapshot (what the config stream says). ``effective()`` is the rollout's
candidate when a promoted stage selects this instance (``ledger.rollout.runs_candidate``), the
base is still the rollout's base version and this instance did not reject that candidate;
otherwise the base. A completed rollout keeps the candidate until the ledger's new version
(the same document) arrives, so nobody flaps back to the old base meanwhile.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from ledger.fleet_events import FleetEvent
from ledger.rollout import Rollout, runs_candidate

from .snapshot import Snapshot

__all__ = ["StageGate"]


class StageGate:
    def __init__(self, service: str, instance: str, labels: Mapping[str, str]) -> None:
        self.service = service
        self.instance = instance
        self.labels = dict(labels)
        self.rollout: Rollout | None = None
        self.base: Snapshot | None = None
        self.rejected: set[str] = set()  # candidates this instance refused: never taken again
        self._candidate: Snapshot | None = None
        self._candidate_of: str | None = None

    def take_base(self, snap: Snapshot) -> Snapshot:
        """A snapshot from a config source: remember it as the base; return what to run."""
        self.base = snap
        return self.effective() or snap

    def take_fleet(self, event: FleetEvent) -> Snapshot | None:
        self.rollout = event.state.rollout
        return self.effective()

    def wants_candidate(self) -> bool:
        r, base = self.rollout, self.base
        if r is None or base is None or base.version != r.base_version or r.id in self.rejected:
            return False
        return r.state == "completed" or runs_candidate(r, self.service, self.instance, self.labels)

    def effective(self) -> Snapshot | None:
        base = self.base
        if base is None or not self.wants_candidate():
            return base
        r = self.rollout
        assert r is not None
        if self._candidate_of != r.id:
            self._candidate = Snapshot(r.candidate_version, copy.deepcopy(r.candidate), base.source,
                                       base.updated_at, base.seq)
            self._candidate_of = r.id
        return self._candidate

    def rollout_of(self, snap: Snapshot | None) -> str | None:
        """The rollout whose candidate ``snap`` is (None: a base snapshot)."""
        return self._candidate_of if snap is not None and snap is self._candidate else None
