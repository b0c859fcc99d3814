"""The fleet commands: ``instances``, ``rollout start|status|promote|pause|abort``, ``schedule``.

Thin like the other admin commands (one API call each, ``cli_http.AdminApi``). ``instances``
prints a table that fits 80 columns on a terminal, tab-separated values when piped (a header
line, then one line per instance, labels as ``k=v,k=v``), the API's JSON with ``--json``;
``--watch`` redraws it every ``--interval`` seconds (piped: one block per refresh, separated by
a blank line; ``--json``: one line per refresh).

``add_commands`` is the hook ``ops.cli.build_parser`` calls to put them on its parser.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from ledger.errors import UsageError

from .cli_args import format_instant, load_document, parse_instant, parse_json_object
from .cli_context import CliContext
from .cli_exit import ExitCode
from .cli_render import compact_json

__all__ = ["parse_stage", "cmd_instances", "cmd_rollout_start", "cmd_rollout_status",
           "cmd_rollout_action", "cmd_schedule_create", "cmd_schedule_cancel"]

TABLE_WIDTH = 80
# name, style, max width: 70 characters of cells + 5 gaps of 2 = 80 columns at most
COLUMNS = (("INSTANCE", "bold", 22), ("STATE", None, 8), ("VER", None, 5), ("TARGET", None, 9),
           ("LABELS", "dim", 18), ("SEEN", "dim", 8))
TSV_COLUMNS = ("instance", "state", "version", "target", "rollout", "labels", "last_seen", "error")


# --- the parser ----------------------------------------------------------------------------------


def _age(value: Any, now: datetime) -> str:
    try:
        seconds = (now - datetime.fromisoformat(str(value))).total_seconds()
    except ValueError:
        return "?"
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _labels(labels: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def _summary_lines(service: str, summary: Mapping[str, Any]) -> list[str]:
    rollout = f", rollout {summary['rollout']} active" if summary.get("rollout") else ""
    return [f"{service}: target version {summary.get('target_version')}{rollout}",
            f"{summary.get('instances', 0)} instances: {summary.get('applied', 0)} applied, "
            f"{summary.get('rejected', 0)} rejected, {summary.get('behind', 0)} behind"]


def _tsv(value: Any) -> str:
    return "" if value is None else str(value).replace("\t", " ").replace("\n", " ")


def _show_instances(ctx: CliContext, service: str, body: Mapping[str, Any], now: datetime) -> None:
    rows = body.get("instances", [])
    out = ctx.out
    if out.json_mode:
        out.emit_json(body, line=True)
        return
    if not out.console.is_terminal:
        lines = ["\t".join(TSV_COLUMNS)]
        for r in rows:
            values = [r.get("instance"), r.get("state"), r.get("version"), r.get("target"), r.get("rollout"),
                      _labels(r.get("labels")), r.get("last_seen"), r.get("error")]
            lines.append("\t".join(_tsv(v) for v in values))
        out.stdout.write("\n".join(lines) + "\n")
        out.stdout.flush()
        return
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for name, style, width in COLUMNS:
        table.add_column(name, style=style, no_wrap=True, overflow="ellipsis", max_width=width)
    colour = {"applied": "green", "rejected": "red", "behind": "yellow"}
    for r in rows:
        state = r.get("state", "")
        table.add_row(escape(r.get("instance", "")), f"[{colour.get(state, 'white')}]{state}[/]",
                      _tsv(r.get("version")), r.get("target", ""), escape(_labels(r.get("labels"))),
                      _age(r.get("last_seen"), now))
    width = min(out.console.width, TABLE_WIDTH)
    for line in _summary_lines(service, body.get("summary", {})):
        out.console.print(line, width=width, overflow="ellipsis", no_wrap=True, soft_wrap=False, markup=False)
    out.console.print(table, width=width, soft_wrap=False)
    out.stdout.flush()


async def cmd_instances(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise UsageError(f"--interval must be > 0, got {args.interval}")
    if args.count is not None and (args.count < 1 or not args.watch):
        raise UsageError("--count takes a positive number and goes with --watch")
    params = {} if args.ttl is None else {"ttl_s": str(args.ttl)}
    refreshes = 0
    async with ctx.api() as api:
        path = api.path("config", args.service, "instances")
        while True:
            resp = await api.request("GET", path, params=params)
            if args.watch and ctx.out.console.is_terminal and not ctx.out.json_mode:
                ctx.out.console.clear()
            elif refreshes and not ctx.out.json_mode:
                ctx.out.stdout.write("\n")
            _show_instances(ctx, args.service, resp.body, datetime.now(UTC))
            refreshes += 1
            if not args.watch or (args.count is not None and refreshes >= args.count):
                return ExitCode.OK
            await asyncio.sleep(args.interval)


# --- rollouts --------------------------------------------------------------------------------------


def parse_stage(text: str) -> dict[str, Any]:
    """``canary=true`` / ``25%`` / ``zone=a,50%`` -> ``{"labels": {...}, "percent": ...}``."""
    stage: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for token in (t.strip() for t in text.split(",")):
        if token.endswith("%"):
            try:
                percent = float(token[:-1])
            except ValueError:
                percent = -1.0
            if not 0 < percent <= 100 or "percent" in stage:
                raise UsageError(f"--stage {text!r}: one percentage in (0, 100], e.g. 25%")
            stage["percent"] = percent
        elif "=" in token and token.split("=", 1)[0]:
            key, value = token.split("=", 1)
            labels[key] = value
        else:
            raise UsageError(f"--stage {text!r}: expected label=value and/or N%, e.g. canary=true or zone=a,50%")
    if labels:
        stage["labels"] = labels
    return stage


def _change(ctx: CliContext, args: argparse.Namespace) -> dict[str, Any]:
    if args.patch is not None:
        text = ctx.stdin.read() if args.patch == "-" else args.patch
        return {"op": "patch", "patch": parse_json_object(text, what="--patch")}
    return {"op": "replace", "config": load_document(args.config, ctx.stdin)}


def _action_options(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, str]]:
    """The reason as ``X-Change-Reason`` (as ``?reason=`` when a header cannot carry it)."""
    reason = getattr(args, "reason", None)
    if not reason:
        return {}, {}
    if reason.isascii() and reason.isprintable():
        return {"X-Change-Reason": reason}, {}
    return {}, {"reason": reason}


async def cmd_rollout_start(ctx: CliContext, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"change": _change(ctx, args), "reason": args.reason or "",
                            "stages": [parse_stage(s) for s in args.stages]}
    gate = {k: v for k, v in (("bake_s", args.bake), ("min_applied", args.min_applied),
                              ("max_rejected", args.max_rejected)) if v is not None}
    if gate:
        body["gate"] = gate
    if args.not_before:
        body["not_before"] = format_instant(parse_instant(args.not_before, what="--not-before"))
    async with ctx.api() as api:
        resp = await api.request("POST", api.path("config", args.service, "rollouts"), body=body)
    done = resp.body
    if ctx.out.json_mode:
        ctx.out.emit_json(done)
    elif done.get("state") == "scheduled":
        ctx.out.print(f"[green]✓[/] rollout [bold]{done['id']}[/] of [bold]{args.service}[/] scheduled for "
                      f"{done.get('not_before')} (cancel: config-ledger schedule cancel {args.service} {done['id']})")
    else:
        ctx.out.print(f"[green]✓[/] rollout [bold]{done['id']}[/] of [bold]{args.service}[/] started: stage 1 of "
                      f"{len(body['stages'])}, base version {done.get('base_version')}")
    return ExitCode.OK


def _stage_text(stage: Mapping[str, Any]) -> str:
    parts = [_labels(stage.get("labels"))] if stage.get("labels") else []
    if stage.get("percent") is not None:
        parts.append(f"{stage['percent']:g}%")
    return ",".join(parts)


async def cmd_rollout_status(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        resp = await api.request("GET", api.path("config", args.service, "rollouts", args.id))
    view = resp.body
    if ctx.out.json_mode:
        ctx.out.emit_json(view)
        return ExitCode.OK
    stages: Sequence[Mapping[str, Any]] = view.get("stages", [])
    ctx.out.print(f"rollout [bold]{view['id']}[/] of [bold]{args.service}[/]: [bold]{view['state']}[/], "
                  f"stage {view['stage'] + 1} of {len(stages)}; base version {view['base_version']} -> "
                  f"candidate {compact_json(view.get('change'), 60)}")
    if view.get("outcome"):
        ctx.out.line(f"outcome: {view['outcome']}")
    rows = [(i + 1, _stage_text(s), "yes" if s.get("promoted") else "", s.get("cohort"), s.get("applied"),
             s.get("rejected"), s.get("pending")) for i, s in enumerate(stages)]
    ctx.out.table(None, ["stage", "selects", "promoted", "cohort", "applied", "rejected", "pending"], rows)
    return ExitCode.OK


async def cmd_rollout_action(ctx: CliContext, args: argparse.Namespace) -> int:
    headers, params = _action_options(args)
    async with ctx.api() as api:
        resp = await api.request("POST", api.path("config", args.service, "rollouts", args.id, args.action),
                                 headers=headers, params=params)
    done = resp.body
    if ctx.out.json_mode:
        ctx.out.emit_json(done)
    else:
        ctx.out.print(f"[green]✓[/] rollout [bold]{done['id']}[/] of [bold]{args.service}[/]: "
                      f"{done['state']}, stage {done['stage'] + 1}")
    return ExitCode.OK


# --- schedules -------------------------------------------------------------------------------------


async def cmd_schedule_create(ctx: CliContext, args: argparse.Namespace) -> int:
    body = {"change": _change(ctx, args), "reason": args.reason or "",
            "not_before": format_instant(parse_instant(args.at, what="--at"))}
    async with ctx.api() as api:
        resp = await api.request("POST", api.path("config", args.service, "schedules"), body=body)
    done = resp.body
    if ctx.out.json_mode:
        ctx.out.emit_json(done)
    else:
        ctx.out.print(f"[green]✓[/] change [bold]{done['id']}[/] of [bold]{args.service}[/] scheduled for "
                      f"{done['not_before']}")
    return ExitCode.OK


async def cmd_schedule_cancel(ctx: CliContext, args: argparse.Namespace) -> int:
    headers, params = _action_options(args)
    async with ctx.api() as api:
        resp = await api.request("DELETE", api.path("config", args.service, "schedules", args.id),
                                 headers=headers, params=params)
    if ctx.out.json_mode:
        ctx.out.emit_json(resp.body)
    else:
        ctx.out.print(f"[green]✓[/] scheduled change [bold]{args.id}[/] of [bold]{args.service}[/] cancelled")
    return ExitCode.OK

