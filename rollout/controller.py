"""One pass of the controller over every service with fleet state (``Controller.step``).

For each service: a scheduled change that is due is applied (a write through the ledger, or the
start of a rollout); an active rollout's gate is evaluated on the live acknowledgements
(``ledger.rollout.decide``) and the decision is appended with the numbers it was made on. Every
append is CAS-checked against the fleet state the decision read, and fenced by the leader lock,
so neither a standby nor a deposed leader can decide twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ledger import Ledger
from ledger import fleet_steps as steps
from ledger.acks import live
from ledger.errors import FleetConflict, UsageError, VersionConflict
from ledger.fleet_events import CONTROLLER, FleetKind, Scheduled, gate_detail
from ledger.fleet_log import FleetHead, FleetLog, candidate_of
from ledger.rollout import Rollout, count, decide

__all__ = ["Controller"]

log = logging.getLogger("rollout")


class Controller:
    def __init__(
        self,
        ledger: Ledger,
        *,
        ttl_s: float = 30.0,
        fence: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.log = FleetLog(ledger.nc, ledger.settings)
        self.ttl_s = ttl_s
        self.fence = fence
        self.clock = clock or (lambda: datetime.now(UTC))
        self.decisions = 0

    async def step(self) -> int:
        """One pass; returns the number of events appended."""
        done = 0
        for service, head in (await self.log.heads()).items():
            try:
                done += await self.step_service(service, head)
            except FleetConflict as exc:
                log.info("%s: %s", service, exc.message)  # someone moved first: next pass decides again
        self.decisions += done
        return done

    async def _append(self, head: FleetHead, service: str, kind: FleetKind, ref: str, state, **kw) -> None:  # type: ignore[no-untyped-def]
        if self.fence is not None:
            await self.fence()
        await self.log.append(head, service, kind, ref, state, now=self.clock, **kw)
        log.info("%s: %s %s (%s)", service, kind.value, ref, kw.get("reason", ""))

    async def step_service(self, service: str, head: FleetHead) -> int:
        state = head.state
        now = self.clock()
        item = state.due(now)
        if item is not None:
            await self._scheduled(service, head, item, now)
            return 1
        rollout = state.active
        if rollout is None:
            return 0
        acks = live(await self.log.acks(service), now, self.ttl_s)
        counts = count(rollout, service, acks)
        elapsed = (now - rollout.stage_at).total_seconds()
        decision = decide(
            rollout.gate, counts, elapsed_s=elapsed, paused=rollout.state == "paused",
            last_stage=rollout.stage == rollout.last_stage,
        )
        if decision.action == "wait":
            return 0
        detail = gate_detail(rollout, counts, elapsed, decision.why)
        if decision.action == "abort":
            new = steps.abort(state, rollout.id, decision.why)
            await self._append(head, service, FleetKind.ROLLOUT_ABORTED, rollout.id, new,
                               actor=CONTROLLER, reason=decision.why, detail=detail)
        elif decision.action == "promote":
            new = steps.promote(state, rollout.id, now, expected_stage=rollout.stage)
            await self._append(head, service, FleetKind.STAGE_PROMOTED, rollout.id, new, actor=CONTROLLER,
                               reason=f"stage {rollout.stage + 1} of {rollout.last_stage}: {decision.why}",
                               detail=detail)
        else:
            await self._complete(service, head, rollout, decision.why, detail)
        return 1

    async def _complete(self, service: str, head: FleetHead, rollout: Rollout, why: str, detail: dict) -> None:  # type: ignore[type-arg]
        state = head.state
        if self.fence is not None:
            await self.fence()
        try:
            appended = await self.ledger.append(
                service, rollout.change.to_change(), actor=rollout.actor,
                reason=f"{rollout.reason} (rollout {rollout.id})".strip(),
                expected_version=rollout.base_version, idempotency_key=f"rollout:{rollout.id}",
            )
        except VersionConflict as exc:
            why = f"the base version moved ({exc.message}); the candidate was not written"
            await self._append(head, service, FleetKind.ROLLOUT_ABORTED, rollout.id,
                               steps.abort(state, rollout.id, why), actor=CONTROLLER, reason=why,
                               detail={**detail, "write_failed": why})
            return
        detail = {**detail, "version": appended.version}
        await self._append(head, service, FleetKind.ROLLOUT_COMPLETED, rollout.id,
                           steps.complete(state, rollout.id, appended.version, why),
                           actor=CONTROLLER, reason=why, detail=detail)

    async def _scheduled(self, service: str, head: FleetHead, item: Scheduled, now: datetime) -> None:
        state, _ = steps.unschedule(head.state, item.id)
        late = round((now - item.not_before).total_seconds(), 3)
        active = state.active
        if active is not None:
            why = f"rollout {active.id} is {active.state}; the scheduled {item.what} was not applied"
            await self._append(head, service, FleetKind.SCHEDULE_FAILED, item.id, state, actor=CONTROLLER,
                               reason=why, detail={"late_s": late, "error": why})
            return
        try:
            if item.what == "rollout":
                assert item.gate is not None
                base, candidate = await candidate_of(self.ledger, service, item.change.to_change())
                rollout_id = item.id
                new = steps.start(
                    state, rollout_id=rollout_id, change=item.change, stages=item.stages, gate=item.gate,
                    base_version=base, candidate=candidate, now=now, actor=item.actor, reason=item.reason,
                )
                await self._append(head, service, FleetKind.ROLLOUT_STARTED, rollout_id, new, actor=item.actor,
                                   reason=item.reason, detail={"scheduled": item.id, "late_s": late})
                return
            if self.fence is not None:
                await self.fence()
            appended = await self.ledger.append(
                service, item.change.to_change(), actor=item.actor, reason=item.reason or f"scheduled {item.id}",
                idempotency_key=f"schedule:{item.id}",
            )
        except (UsageError, VersionConflict) as exc:
            await self._append(head, service, FleetKind.SCHEDULE_FAILED, item.id, state, actor=CONTROLLER,
                               reason=exc.message, detail={"late_s": late, "error": exc.message})
            return
        await self._append(head, service, FleetKind.SCHEDULE_APPLIED, item.id, state, actor=CONTROLLER,
                           reason=f"scheduled at {item.not_before.isoformat()}",
                           detail={"late_s": late, "version": appended.version, "seq": appended.seq})

