"""The auditor commands, straight from the stream (``AuditReader``; no API, no PostgreSQL).

``replay SERVICE --until T``: every event of the service stored up to T, each verified against
the one before it, and the state it leads to. ``verify [SERVICE]``: every chain (or one) —
versions contiguous from 1, ``prev_hash`` links, hashes recomputing — reported per service, then
the rollout chains (``AuditReader.verify_fleet``: links, step transitions, every controller
decision re-run on the numbers it recorded); exit code 5 (integrity) when anything is broken.

Both show a progress bar on a terminal. ``verify`` walks ``AuditReader.replay(verify=False)``
and applies ``ledger.fold.check_next`` itself (the check ``AuditReader.verify`` runs) because
it needs each event as it passes, for the bar and for the per-service table.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from client.audit import AuditReader
from ledger import LedgerSettings, nats_io
from ledger.errors import NotFound, ProjectionDiverged
from ledger.event import format_time
from ledger.fleet_events import FleetReport
from ledger.fold import ChainState, check_next

from .cli_args import format_instant, parse_instant
from .cli_context import CliContext
from .cli_exit import ExitCode
from .cli_render import Output, compact_json, short_time

__all__ = ["cmd_replay", "cmd_verify"]


@contextmanager
def _progress(out: Output, description: str, total: int | None) -> Iterator[Progress]:
    """A rich progress bar on stderr; invisible when stderr is not a terminal or with --json."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=out.err, transient=True, disable=out.json_mode or not out.err.is_terminal,
    )
    with progress:
        progress.add_task(description, total=total)
        yield progress


def _reader(ctx: CliContext) -> AuditReader:
    """The stream as ``LEDGER_STREAM`` / ``LEDGER_SUBJECT_PREFIX`` name it, at ``--nats-url``."""
    settings = LedgerSettings.from_env(ctx.environ).model_copy(update={"nats_url": ctx.nats_url})
    return AuditReader.connect(settings=settings)


@contextmanager
def _explained(ctx: CliContext) -> Iterator[None]:
    """A missing stream says which server was asked and what to set."""
    try:
        yield
    except NotFound as exc:
        if not exc.message.startswith("not found (stream"):
            raise
        stream = LedgerSettings.from_env(ctx.environ).stream
        raise NotFound(
            f"no stream {stream} on {ctx.nats_url} ({ctx.nats_source}); point --nats-url or NATS_URL "
            "at the ledger's NATS (start it with `config-ledger up`), or create the stream with "
            "`config-ledger streams apply`"
        ) from None


async def cmd_replay(ctx: CliContext, args: argparse.Namespace) -> int:
    with _explained(ctx):
        return await _replay(ctx, args)


async def _replay(ctx: CliContext, args: argparse.Namespace) -> int:
    until = parse_instant(args.until, what="--until")
    async with _reader(ctx) as audit:
        head = await audit.state_at(args.service, until)
        if head is None:  # nothing to replay: do not wait for a consumer to say so
            ctx.out.error(f"{args.service} had no events up to {format_instant(until)}")
            return ExitCode.NOT_FOUND
        total = head.event.version
        entries = []
        with _progress(ctx.out, f"replaying {args.service}", total) as progress:
            try:
                async for entry in audit.replay(args.service, until=until):
                    entries.append(entry)
                    progress.advance(progress.task_ids[0])
            except ProjectionDiverged as exc:
                ctx.out.error(f"replay stopped: {exc.message}")
                return ExitCode.INTEGRITY
    state = entries[-1].event.config if entries else None
    if ctx.out.json_mode:
        ctx.out.emit_json({
            "service": args.service,
            "until": format_instant(until),
            "events": [{**e.event.to_dict(), "stream_seq": e.seq, "stored_at": format_time(e.stored_at)}
                       for e in entries],
            "version": entries[-1].event.version if entries else None,
            "config": state,
        })
        return ExitCode.OK if entries else ExitCode.NOT_FOUND
    if not entries:
        ctx.out.error(f"{args.service} had no events up to {format_instant(until)}")
        return ExitCode.NOT_FOUND
    rows = [(e.event.version, e.event.kind.value, short_time(format_time(e.stored_at)), e.event.actor,
             e.event.reason, compact_json(e.event.change, 50), (e.event.changeset_id or "")[:8])
            for e in entries]
    ctx.out.table(f"{args.service}: {len(entries)} events up to {format_instant(until)} (chain verified)",
                  ["version", "kind", "stored", "actor", "reason", "change", "change set"], rows,
                  styles=["bold", "cyan", "dim", None, None, None, "dim"], wrap=("actor", "reason", "change"))
    last = entries[-1].event
    ctx.out.print(f"\n[bold cyan]{args.service}[/] at {format_instant(until)}: version [bold]{last.version}[/]"
                  + (" [red](deleted)[/]" if state is None else ""))
    if state is not None:
        ctx.out.document(state)
    return ExitCode.OK


@dataclass
class _ServiceResult:
    events: int = 0
    version: int = 0
    problem: str | None = None


@dataclass
class _Verification:
    services: dict[str, _ServiceResult] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        return [r.problem for r in self.services.values() if r.problem]


async def cmd_verify(ctx: CliContext, args: argparse.Namespace) -> int:
    with _explained(ctx):
        return await _verify(ctx, args)


async def _verify(ctx: CliContext, args: argparse.Namespace) -> int:
    result = _Verification()
    states: dict[str, ChainState] = {}
    async with _reader(ctx) as audit:
        settings = audit.settings
        if args.service:
            head = await audit.state_at(args.service, datetime.now(UTC))
            if head is None:
                ctx.out.error(f"no events for service {args.service!r}")
                return ExitCode.NOT_FOUND
            total = head.event.version
        else:
            total = await nats_io.stream_last_seq(audit.nc, settings.stream)
        with _progress(ctx.out, "verifying", total) as progress:
            async for entry in audit.replay(args.service, verify=False):
                progress.advance(progress.task_ids[0])
                event = entry.event
                name = event.service
                record = result.services.setdefault(name, _ServiceResult())
                record.events += 1
                if record.problem:
                    continue
                try:
                    states[name] = check_next(states.get(name), event, seq=entry.seq)
                    record.version = event.version
                except ProjectionDiverged as exc:
                    record.problem = exc.message
        fleet = await audit.verify_fleet(args.service)
    ok = not result.problems and fleet.ok
    if ctx.out.json_mode:
        ctx.out.emit_json({
            "ok": ok,
            "services": {n: {"events": r.events, "version": r.version, "ok": r.problem is None,
                             "problem": r.problem} for n, r in sorted(result.services.items())},
            "events": sum(r.events for r in result.services.values()),
            "problems": result.problems + fleet.problems,
            "fleet": {"ok": fleet.ok, "services": fleet.services, "events": fleet.events,
                      "decisions": fleet.decisions, "problems": fleet.problems},
        })
    else:
        rows = [(name, r.events, r.version,
                 Text("ok", style="green") if r.problem is None else Text("BROKEN", style="bold red"),
                 r.problem or "") for name, r in sorted(result.services.items())]
        ctx.out.table("hash chains", ["service", "events", "last version", "chain", "problem"], rows,
                      styles=["bold cyan", None, None, None, None], wrap=("problem",))
        events = sum(r.events for r in result.services.values())
        if not result.problems:
            ctx.out.print(f"[bold green]✓ verified[/] {len(result.services)} service(s), {events} event(s): "
                          "every hash chain intact, versions contiguous")
        else:
            ctx.out.print(f"[bold red]✗ {len(result.problems)} broken chain(s)[/] among "
                          f"{len(result.services)} service(s), {events} event(s)")
        _show_fleet(ctx, fleet)
    return ExitCode.OK if ok else ExitCode.INTEGRITY



def _show_fleet(ctx: CliContext, fleet: FleetReport) -> None:
    """The rollout chains' verdict: links, step transitions, automatic decisions re-run."""
    if not fleet.events:
        return
    what = (f"{fleet.events} rollout/schedule event(s) of {fleet.services} service(s), "
            f"{fleet.decisions} controller decision(s) re-run")
    if fleet.ok:
        ctx.out.print(f"[bold green]✓ verified[/] {what}: chains intact, every decision reproduces")
        return
    ctx.out.print(f"[bold red]✗ {len(fleet.problems)} fleet problem(s)[/] in {what}:")
    for problem in fleet.problems:
        ctx.out.line(f"  {problem}")
