"""Safe-change commands: ``apply FILE`` (an atomic change set), ``blame SERVICE``, and the plan
table that ``set|patch|delete|rollback --plan`` print (``?dry_run=true``: nothing is appended)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ledger.errors import UsageError

from .cli_args import load_document, parse_instant
from .cli_context import CliContext
from .cli_exit import ExitCode
from .cli_http import ApiResponse
from .cli_render import compact_json, short_time

__all__ = ["cmd_apply", "cmd_blame", "show_plan"]


def _plan_rows(plan: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    diff = plan.get("diff") or {}
    rows = [("+", d["path"], "", compact_json(d["value"], 60)) for d in diff.get("added", [])]
    rows += [("-", d["path"], compact_json(d["value"], 60), "") for d in diff.get("removed", [])]
    rows += [("~", d["path"], compact_json(d["from"], 60), compact_json(d["to"], 60)) for d in diff.get("changed", [])]
    return sorted(rows, key=lambda r: r[1])


def _show_one(ctx: CliContext, plan: Mapping[str, Any]) -> bool:
    verdict = "[green]would be accepted[/]" if plan.get("ok") else "[red]would be refused[/]"
    ctx.out.print(
        f"plan: [bold]{plan.get('service')}[/] {plan.get('kind')} version {plan.get('current_version')} "
        f"→ {plan.get('version')}: {verdict}"
    )
    ctx.out.table(None, ["", "path", "from", "to"], _plan_rows(plan))
    for e in plan.get("policy_errors") or []:
        ctx.out.print(f"  [red]policy[/] {e.get('rule')} {e.get('path') or ''}: {e.get('message')}")
    for e in plan.get("schema_errors") or []:
        ctx.out.print(f"  [red]schema[/] {e.get('pointer') or '/'} ({e.get('keyword')}): {e.get('message')}")
    if plan.get("conflict"):
        c = plan["conflict"]
        ctx.out.print(f"  [red]conflict[/] expected version {c.get('expected_version')}, "
                      f"current {c.get('current_version')}")
    return bool(plan.get("ok"))


def show_plan(ctx: CliContext, resp: ApiResponse) -> int:
    """Print a dry run (one plan, or a change set's plans); exit 1 when it would be refused."""
    body = resp.body
    if ctx.out.json_mode:
        ctx.out.emit_json(body)
        return ExitCode.OK if body.get("ok") else 1
    plans = body.get("members") if "members" in body else [body]
    ok = all([_show_one(ctx, p) for p in plans])
    ctx.out.print("nothing was appended (dry run)")
    return ExitCode.OK if ok else 1


async def cmd_apply(ctx: CliContext, args: argparse.Namespace) -> int:
    """A YAML/JSON file ``{reason, changes: [{service, op, config|patch|to_version, if_match}]}``
    applied as one atomic change set."""
    doc = load_document(args.file, ctx.stdin)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("changes"), list):
        raise UsageError("apply: the file must hold {reason: ..., changes: [...]}")
    body = dict(doc)
    if args.reason:
        body["reason"] = args.reason
    params = {"dry_run": "true"} if args.plan else {}
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    async with ctx.api() as api:
        resp = await api.request("POST", api.path("changesets"), body=body, params=params, headers=headers)
    if args.plan:
        return show_plan(ctx, resp)
    if ctx.out.json_mode:
        ctx.out.emit_json(resp.body)
        return ExitCode.OK
    ctx.out.print(f"[green]✓[/] change set [bold]{resp.body['changeset_id']}[/] applied")
    ctx.out.table(None, ["service", "version", "kind", "seq"],
                  [(m["service"], m["version"], m["kind"], m["seq"]) for m in resp.body["members"]])
    return ExitCode.OK


async def cmd_blame(ctx: CliContext, args: argparse.Namespace) -> int:
    params = {"at": parse_instant(args.at).isoformat()} if args.at else {}
    async with ctx.api() as api:
        resp = await api.request("GET", api.path("config", args.service, "blame"), params=params)
    if ctx.out.json_mode:
        ctx.out.emit_json(resp.body)
        return ExitCode.OK
    ctx.out.table(
        f"{args.service} version {resp.body['version']}",
        ["pointer", "value", "version", "when", "actor", "reason", "change set"],
        [(line["pointer"] or "/", compact_json(line["value"], 40), line["version"],
          short_time(line["stored_at"]), line["actor"], line["reason"], (line["changeset_id"] or "")[:8])
         for line in resp.body["lines"]],
    )
    return ExitCode.OK
