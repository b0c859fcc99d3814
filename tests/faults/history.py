"""History recorder and checker for the fault-injection scenarios (pure: no I/O, no clock reads
except through the injected ``clock``).

A *history* is what the test's clients did and saw: every write attempt (invoke, then ok, fail or
unknown), every read, and every version a client process observed, each with monotonic
timestamps (``time.monotonic()`` is CLOCK_MONOTONIC, system-wide on Linux, so the client driver's
timestamps from another process are comparable with ours).

The checker compares a history with the stream (the source of truth) and reports every problem
it finds instead of stopping at the first one, so a failing scenario explains itself.

Outcome rules (the recorder's callers follow them):
- ``ok``: the server acknowledged the write (HTTP 200/202 with a version, or ``Ledger.append``
  returned). ``visible`` says whether the ack also promised read-your-writes (HTTP 200: the
  projector applied it) — only such acks bound what a later read may return.
- ``fail``: the server definitely did not apply it (HTTP 409 and other 4xx, VersionConflict).
- ``unknown``: anything else — timeouts, reset connections, 5xx without a definite "not applied".

Writes are *logical*: the attempts of one write share a ``marker`` (a unique value the writer puts
in the document, ``{"w": "<writer>-<n>"}``) and, when retried idempotently, an Idempotency-Key.
A logical write is ok if any attempt was ok, else unknown if any attempt was unknown, else fail.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ledger.event import Event, idempotency_event_id
from ledger.fold import verify_chain

__all__ = [
    "Op",
    "History",
    "StreamEvent",
    "CheckResult",
    "check_history",
    "MARKER_KEY",
]

MARKER_KEY = "w"
NEG_INF = float("-inf")
POS_INF = float("inf")

Outcome = Literal["ok", "fail", "unknown"]


@dataclass
class Op:
    """One attempt: a write, a read, or a client's observation of a version."""

    id: int
    kind: Literal["write", "read", "observe"]
    service: str
    process: str
    invoke: float
    complete: float | None = None
    outcome: Outcome | None = None
    marker: str | None = None  # writes: the unique value in the document
    idem_key: str | None = None  # writes: the Idempotency-Key, if any
    version: int | None = None  # ok write: the acked version; read/observe: version seen (0 = none)
    config: Any = None  # read/observe: the document seen (None: not recorded)
    visible: bool = True  # ok write: the ack promised read-your-writes
    seq: int | None = None  # ok write: the stream sequence the server reported, if any
    detail: str = ""


class History:
    """Thread-unsafe, single event loop recorder of operations."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.ops: list[Op] = []

    def _new(self, **kw: Any) -> Op:
        op = Op(id=len(self.ops), invoke=self.clock(), **kw)
        self.ops.append(op)
        return op

    # --- writes ---------------------------------------------------------------------------------

    def invoke_write(self, service: str, process: str, marker: str, idem_key: str | None = None) -> Op:
        return self._new(kind="write", service=service, process=process, marker=marker, idem_key=idem_key)

    def ok(self, op: Op, version: int, *, visible: bool = True, seq: int | None = None,
           detail: str = "") -> Op:
        return self._done(op, "ok", version=version, visible=visible, seq=seq, detail=detail)

    def fail(self, op: Op, detail: str = "") -> Op:
        return self._done(op, "fail", detail=detail)

    def unknown(self, op: Op, detail: str = "") -> Op:
        return self._done(op, "unknown", detail=detail)

    # --- reads ----------------------------------------------------------------------------------

    def invoke_read(self, service: str, process: str) -> Op:
        return self._new(kind="read", service=service, process=process)

    def read_ok(self, op: Op, version: int, config: Any) -> Op:
        """``version`` 0 and ``config`` None: the service had no config."""
        return self._done(op, "ok", version=version, config=config, detail=op.detail)

    def read_fail(self, op: Op, detail: str = "") -> Op:
        return self._done(op, "fail", detail=detail)  # a failed read constrains nothing

    def observe(self, service: str, process: str, version: int, at: float, config: Any = None) -> Op:
        """A client process saw ``version`` at monotonic time ``at`` (its own clock reading)."""
        op = Op(id=len(self.ops), kind="observe", service=service, process=process, invoke=at,
                complete=at, outcome="ok", version=version, config=config)
        self.ops.append(op)
        return op

    def _done(self, op: Op, outcome: Outcome, **kw: Any) -> Op:
        if op.outcome is not None:
            raise AssertionError(f"op {op.id} completed twice")
        op.complete = self.clock()
        op.outcome = outcome
        for k, v in kw.items():
            setattr(op, k, v)
        return op

    def dump(self, path: Any) -> None:
        """Every operation as a JSON line (post-mortem of a failed scenario)."""
        import json
        from dataclasses import asdict

        with open(path, "w") as fh:
            fh.write(json.dumps({"wall_minus_monotonic": time.time() - time.monotonic()}) + "\n")
            for op in self.ops:
                fh.write(json.dumps(asdict(op), default=str) + "\n")

    def pending(self) -> list[Op]:
        return [op for op in self.ops if op.outcome is None]

    def writes(self, service: str | None = None) -> list[Op]:
        return [op for op in self.ops if op.kind == "write" and (service is None or op.service == service)]

    def services(self) -> set[str]:
        return {op.service for op in self.ops}


@dataclass(frozen=True)
class StreamEvent:
    """One stored message of a service subject, as the checker needs it."""

    seq: int
    service: str
    version: int | None  # None: the message is not an event (poison)
    event_id: str | None
    config: Any
    event: Event | None = None

    @property
    def marker(self) -> str | None:
        if isinstance(self.config, dict):
            value = self.config.get(MARKER_KEY)
            return value if isinstance(value, str) else None
        return None

    @classmethod
    def from_event(cls, seq: int, event: Event) -> StreamEvent:
        return cls(seq, event.service, event.version, event.event_id, event.config, event)


@dataclass
class _Logical:
    marker: str
    service: str
    attempts: list[Op] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        outcomes = {a.outcome for a in self.attempts}
        if "ok" in outcomes:
            return "ok"
        if "unknown" in outcomes or None in outcomes:  # never completed: unknown
            return "unknown"
        return "fail"

    @property
    def first_invoke(self) -> float:
        return min(a.invoke for a in self.attempts)

    @property
    def acked_at(self) -> float:
        """When the write was first acknowledged (inf if never)."""
        return min((a.complete for a in self.attempts if a.outcome == "ok" and a.complete is not None),
                   default=POS_INF)

    @property
    def visible_at(self) -> float:
        """When the write was first acknowledged as readable (inf if never)."""
        return min((a.complete for a in self.attempts
                    if a.outcome == "ok" and a.visible and a.complete is not None), default=POS_INF)

    @property
    def acked_versions(self) -> set[int]:
        return {a.version for a in self.attempts if a.outcome == "ok" and a.version is not None}


@dataclass
class ServiceStats:
    attempted: int = 0  # logical writes
    attempts: int = 0  # tries, retries included
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0
    unknown_landed: int = 0
    lost: int = 0
    duplicates: int = 0
    reads: int = 0
    observations: int = 0


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    stats: dict[str, ServiceStats] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for s in self.stats.values():
            for k, v in vars(s).items():
                out[k] += v
        return dict(out)

    def assert_ok(self) -> None:
        if self.problems:
            shown = "\n  ".join(self.problems[:40])
            more = f"\n  … and {len(self.problems) - 40} more" if len(self.problems) > 40 else ""
            raise AssertionError(f"history check failed ({len(self.problems)} problems):\n  {shown}{more}")


def check_history(
    history: History | Iterable[Op],
    stream: Iterable[StreamEvent],
    *,
    services: Iterable[str] | None = None,
    contiguous_observations: bool = False,
    reads_see_every_ack: bool = False,
) -> CheckResult:
    """Check ``history`` against the stream's events; see the module docstring.

    ``contiguous_observations``: each client process must have seen every version from the first
    it saw to the last (no missed version), not just increasing ones.
    ``reads_see_every_ack``: a read must reflect every write acknowledged before it started, even
    an ack that did not promise the projection had it (HTTP 202) — the API promises this within
    one API process lifetime (its reads wait for, or bypass, a lagging projection).
    """
    ops = list(history.ops if isinstance(history, History) else history)
    by_service_stream: dict[str, list[StreamEvent]] = defaultdict(list)
    for ev in sorted(stream, key=lambda e: e.seq):
        by_service_stream[ev.service].append(ev)
    by_service_ops: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        by_service_ops[op.service].append(op)
    names = set(services) if services is not None else set(by_service_ops)
    result = CheckResult()
    landed: list[tuple[_Logical, int]] = []
    for service in sorted(names):
        stats = ServiceStats()
        result.stats[service] = stats
        landed += _check_service(service, by_service_ops.get(service, []),
                                 by_service_stream.get(service, []), stats, result.problems,
                                 contiguous_observations, reads_see_every_ack)
    _check_global_order(landed, result.problems)
    return result


def _check_global_order(landed: list[tuple[_Logical, int]], problems: list[str]) -> None:
    """The stream is one sequence: a write acknowledged before another (of *any* service) started
    must have the smaller stream sequence. Same-service pairs are reported per service."""
    acked = sorted(((w.acked_at, seq, w) for w, seq in landed if w.outcome == "ok"), key=lambda t: t[0])
    i = 0
    best: tuple[int, _Logical | None] = (0, None)
    for w, seq in sorted(landed, key=lambda item: item[0].first_invoke):
        while i < len(acked) and acked[i][0] < w.first_invoke:
            if acked[i][1] > best[0]:
                best = (acked[i][1], acked[i][2])
            i += 1
        first = best[1]
        if first is not None and best[0] > seq and first.service != w.service:
            problems.append(
                f"write {first.marker!r} of {first.service} (seq {best[0]}) was acknowledged before "
                f"write {w.marker!r} of {w.service} started, yet the latter has the earlier stream "
                f"sequence {seq} (reorder across services)")


def _check_service(
    service: str,
    ops: list[Op],
    events: list[StreamEvent],
    stats: ServiceStats,
    problems: list[str],
    contiguous_observations: bool,
    reads_see_every_ack: bool = False,
) -> list[tuple[_Logical, int]]:
    """Check one service; return its landed writes with their stream sequences."""
    p = problems.append
    # 1. The stream itself: versions 1..n in stream order, a sound hash chain.
    non_events = [e for e in events if e.version is None]
    for e in non_events:
        p(f"{service}: stream seq {e.seq} is not an event")
    real = [e for e in events if e.version is not None]
    versions = [e.version for e in real]
    if versions != list(range(1, len(versions) + 1)):
        p(f"{service}: versions are not contiguous from 1 in stream order: {_short(versions)}")
    parsed = [e.event for e in real if e.event is not None]
    if len(parsed) == len(real) and parsed:
        report = verify_chain(parsed)
        for problem in report.problems:
            p(f"{service}: {problem}")
    by_version: dict[int, StreamEvent] = {}
    for e in real:
        assert e.version is not None
        by_version.setdefault(e.version, e)

    # 2. Writes: group attempts into logical writes by marker.
    logical: dict[str, _Logical] = {}
    for op in ops:
        if op.kind != "write":
            continue
        stats.attempts += 1
        if op.marker is None:
            p(f"{service}: write op {op.id} has no marker")
            continue
        logical.setdefault(op.marker, _Logical(op.marker, service)).attempts.append(op)
    stats.attempted = len(logical)
    landed: dict[str, list[StreamEvent]] = defaultdict(list)
    for e in real:
        if e.marker is not None:
            landed[e.marker].append(e)
    for marker, found in landed.items():
        if len(found) > 1:
            stats.duplicates += len(found) - 1
            p(f"{service}: write {marker!r} has {len(found)} effects (duplicate) at seqs "
              f"{[e.seq for e in found]}")
    write_of_version: dict[int, _Logical] = {}
    landed_seqs: list[tuple[_Logical, int]] = []
    for marker, w in logical.items():
        found = landed.get(marker, [])
        outcome = w.outcome
        if outcome == "ok":
            stats.acknowledged += 1
            if not found:
                stats.lost += 1
                p(f"{service}: acknowledged write {marker!r} (version {sorted(w.acked_versions)}) "
                  "is not in the stream (lost)")
            elif w.acked_versions - {found[0].version}:
                p(f"{service}: write {marker!r} acked as version(s) {sorted(w.acked_versions)} but "
                  f"stored as version {found[0].version}")
            else:
                seqs = {a.seq for a in w.attempts if a.outcome == "ok" and a.seq is not None}
                if seqs - {found[0].seq}:
                    p(f"{service}: write {marker!r} acked at stream sequence(s) {sorted(seqs)} but "
                      f"stored at {found[0].seq}")
        elif outcome == "fail":
            stats.failed += 1
            if found:
                p(f"{service}: write {marker!r} was reported failed but is in the stream at seq "
                  f"{found[0].seq}")
        else:
            stats.unknown += 1
            if found:
                stats.unknown_landed += 1
        if found:
            first = found[0]
            assert first.version is not None
            write_of_version[first.version] = w
            landed_seqs.append((w, first.seq))
            keys = {a.idem_key for a in w.attempts if a.idem_key}
            for key in keys:
                want = idempotency_event_id(service, key)
                if first.event_id != want:
                    p(f"{service}: write {marker!r} with Idempotency-Key {key!r} stored with event_id "
                      f"{first.event_id}, expected {want}")
            if len(keys) > 1:
                p(f"{service}: write {marker!r} was retried under different idempotency keys {keys}")

    # 3. Real-time order: a write acknowledged before another started comes first in the stream.
    landed_writes = sorted(
        ((v, w) for v, w in write_of_version.items()), key=lambda item: item[1].first_invoke
    )
    acked = sorted(((w.acked_at, v, w.marker) for v, w in write_of_version.items()
                    if w.outcome == "ok"), key=lambda t: t[0])
    i, best = 0, (0, "")
    for version, w in landed_writes:
        while i < len(acked) and acked[i][0] < w.first_invoke:
            if acked[i][1] > best[0]:
                best = (acked[i][1], acked[i][2])
            i += 1
        if best[0] >= version:
            p(f"{service}: write {best[1]!r} (version {best[0]}) was acknowledged before write "
              f"{w.marker!r} started, yet {w.marker!r} got the earlier version {version} (reorder)")

    # 4. Reads and observations: a state that existed during the read.
    def became_current_not_before(version: int) -> float:
        w = write_of_version.get(version)
        return w.first_invoke if w is not None else NEG_INF

    def surely_current_by(version: int) -> float:
        w = write_of_version.get(version)
        if w is None:
            return POS_INF
        return w.acked_at if reads_see_every_ack else w.visible_at

    # superseded_by[v]: the earliest instant some version > v was surely current (a read that
    # started after it and returned v, or less, is stale).
    top = max(by_version, default=0)
    superseded_by = [POS_INF] * (top + 2)
    for version in range(top, -1, -1):
        superseded_by[version] = min(superseded_by[version + 1], surely_current_by(version + 1))

    last_seen: dict[str, Op] = {}
    for op in sorted((o for o in ops if o.kind in ("read", "observe")), key=lambda o: o.invoke):
        if op.outcome != "ok":
            continue
        assert op.complete is not None and op.version is not None
        what = "read" if op.kind == "read" else f"client {op.process}"
        if op.kind == "read":
            stats.reads += 1
        else:
            stats.observations += 1
        v = op.version
        if v < 0 or (v > 0 and v not in by_version):
            p(f"{service}: {what} (op {op.id}) saw version {v}, which is not in the stream")
            continue
        if v > 0 and op.config is not None and by_version[v].config != op.config:
            p(f"{service}: {what} (op {op.id}) saw version {v} with a document that differs from "
              "the stream's event of that version")
        if v > 0 and became_current_not_before(v) > op.complete:
            p(f"{service}: {what} (op {op.id}) saw version {v} before its write was even invoked "
              "(read from the future)")
        if op.kind == "read" and superseded_by[v] < op.invoke:
            p(f"{service}: read (op {op.id}) returned version {v} although a later version was "
              "acknowledged (read-your-writes) before the read started (stale read)")
        if op.kind == "observe":
            prev = last_seen.get(op.process)
            if prev is not None:
                assert prev.version is not None
                if v < prev.version:
                    p(f"{service}: client {op.process} went from version {prev.version} back to {v} "
                      "(versions must only move forward)")
                elif contiguous_observations and v > prev.version + 1:
                    p(f"{service}: client {op.process} jumped from version {prev.version} to {v} "
                      f"(missed {list(range(prev.version + 1, v))[:10]})")
            last_seen[op.process] = op
    return landed_seqs


def _short(values: list[Any], n: int = 20) -> str:
    return repr(values) if len(values) <= n else f"{values[:n]!r}… ({len(values)} in all)"
