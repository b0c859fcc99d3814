"""Plan before apply: what a write would do, decided exactly as the write decides, appended never.

``plan_change`` is pure: given the service's current event, the rollback target and the schema in
force, it returns the version the service would become, the documents before and after, and the
result of every rule (policy: size, depth, numbers, secrets, change applicability; schema: every
failing pointer; concurrency: ``if_match``). ``plan`` and ``plan_set`` load that state from the
ledger (reads only) and call it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .changeset import Member, check_members
from .errors import InvalidChange, InvalidConfig, NotFound
from .event import Change, Event, new_event
from .ledger import Ledger
from .schema import violations
from .validate import DEFAULT_LIMITS, Limits

__all__ = ["Plan", "plan_change", "plan", "plan_set"]

_PLAN_ID = "00000000-0000-4000-8000-000000000000"  # never stored: a plan appends nothing
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    service: str
    kind: str
    current_version: int  # 0: the service has no config yet
    version: int  # the version the write would create
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    schema_version: int | None = None  # the schema in force (None: no schema)
    schema_errors: list[dict[str, str]] = field(default_factory=list)
    policy_errors: list[dict[str, str]] = field(default_factory=list)
    conflict: dict[str, int] | None = None  # if_match given and not the current version

    @property
    def ok(self) -> bool:
        """Would the write be accepted as it stands?"""
        return not (self.schema_errors or self.policy_errors or self.conflict)


def plan_change(
    previous: Event | None,
    service: str,
    change: Change,
    *,
    target: Event | None = None,
    schema: Event | None = None,
    limits: Limits = DEFAULT_LIMITS,
    if_match: int | None = None,
) -> Plan:
    current = previous.version if previous else 0
    before = previous.config if previous else None
    conflict = None
    if if_match is not None and if_match != current:
        conflict = {"expected_version": if_match, "current_version": current}
    policy: list[dict[str, str]] = []
    after: dict[str, Any] | None = before
    try:
        event = new_event(
            previous, service, change, actor="plan", reason="", occurred_at=_EPOCH,
            event_id=_PLAN_ID, target=target, limits=limits,
        )
        after = event.config
    except InvalidConfig as exc:
        if exc.rule == "document.type":  # not a document at all: a malformed request, not a plan
            raise
        policy.append({"rule": exc.rule, "path": exc.path, "message": exc.message})
    except InvalidChange as exc:
        policy.append({"rule": "change", "path": "", "message": exc.message})
    except NotFound as exc:  # e.g. a patch of a config that does not exist
        rule = exc.details.get("rule", "not_found") if isinstance(exc.details, dict) else "not_found"
        policy.append({"rule": rule, "path": "", "message": exc.message})
    schema_errors: list[dict[str, str]] = []
    schema_doc = schema.config if schema is not None else None
    if schema_doc is not None and after is not None and not policy:
        schema_errors = [v.to_dict() for v in violations(schema_doc, after)]
    return Plan(
        service, change.kind.value, current, current + 1, before, after,
        schema_version=schema.version if schema_doc is not None and schema else None,
        schema_errors=schema_errors, policy_errors=policy, conflict=conflict,
    )


async def plan(ledger: Ledger, service: str, change: Change, *, if_match: int | None = None) -> Plan:
    """Plan one write of ``service`` against the ledger's current state (reads only)."""
    heads = await ledger.heads(service)  # one snapshot, the one a write would decide on
    previous, schema = heads.last_config, heads.schema_in_force
    try:
        target = await ledger._rollback_target(service, change, previous)
    except InvalidChange as exc:
        return Plan(service, change.kind.value, previous.version if previous else 0,
                    (previous.version if previous else 0) + 1, previous.config if previous else None, None,
                    policy_errors=[{"rule": "change", "path": "", "message": exc.message}])
    except NotFound:
        raise
    return plan_change(previous, service, change, target=target, schema=schema,
                       limits=ledger.settings.limits, if_match=if_match)


async def plan_set(ledger: Ledger, members: Sequence[Member]) -> list[Plan]:
    """Plan every member of a change set."""
    check_members(members)
    return list(await asyncio.gather(*(plan(ledger, m.service, m.change, if_match=m.if_match) for m in members)))
