"""The admin commands: get, set, patch, delete, history, diff, rollback, snapshot, services.

Each one is a thin translation: arguments -> one API call (``cli_http.AdminApi``) -> a table or
document for people, or the API's JSON as-is with ``--json``. Writes send ``--reason`` as the
``X-Change-Reason`` header (as ``?reason=`` when it is not plain ASCII, which headers cannot
carry) and ``--if-version`` as ``If-Match``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ledger.errors import NotFound, UsageError

from .cli_args import (
    VersionOrInstant,
    format_instant,
    key_path,
    load_document,
    lookup,
    parse_instant,
    parse_object,
    parse_version_or_instant,
)
from .cli_context import CliContext
from .cli_exit import ExitCode
from .cli_http import ApiResponse
from .cli_render import compact_json, plain, short_time
from .cli_safe import show_plan

__all__ = [
    "cmd_get", "cmd_set", "cmd_patch", "cmd_delete", "cmd_history", "cmd_diff", "cmd_rollback",
    "cmd_snapshot", "cmd_services", "fetch_config",
]

MERGE_PATCH = "application/merge-patch+json"


def _write_options(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query parameters of a write: reason, expected version, idempotency key."""
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    reason = getattr(args, "reason", None)
    if reason:
        if reason.isascii() and reason.isprintable():
            headers["X-Change-Reason"] = reason
        else:
            params["reason"] = reason
    if getattr(args, "if_version", None) is not None:
        headers["If-Match"] = f'"{args.if_version}"'
    if getattr(args, "idempotency_key", None):
        headers["Idempotency-Key"] = args.idempotency_key
    if getattr(args, "plan", False):
        params["dry_run"] = "true"
    return headers, params


def _version_of(body: Any) -> Any:
    if isinstance(body, Mapping):
        for key in ("version", "current_version"):
            if body.get(key) is not None:
                return body[key]
        event = body.get("event")
        if isinstance(event, Mapping):
            return event.get("version")
    return None


def _show_write(ctx: CliContext, service: str, resp: ApiResponse, verb: str) -> int:
    if isinstance(resp.body, Mapping) and resp.body.get("dry_run"):
        return show_plan(ctx, resp)
    if ctx.out.json_mode:
        ctx.out.emit_json(resp.body)
        return ExitCode.OK
    version = _version_of(resp.body)
    if isinstance(resp.body, Mapping) and resp.body.get("unchanged"):
        ctx.out.print(f"{service} unchanged (version {version}; nothing recorded)")
        return ExitCode.OK
    pending = " [yellow](accepted; the projection has not caught up yet)[/]" if resp.status == 202 else ""
    ctx.out.print(f"[green]✓[/] {verb} [bold]{service}[/] → version [bold]{version}[/]{pending}")
    return ExitCode.OK


async def fetch_config(ctx: CliContext, service: str, params: Mapping[str, str] | None = None) -> ApiResponse:
    """GET the config; a deleted service says when and by whom, and how to restore it."""
    async with ctx.api() as api:
        try:
            return await api.request("GET", api.path("config", service), params=params)
        except NotFound as exc:
            details = exc.details if isinstance(exc.details, Mapping) else {}
            if details.get("deleted") and not params:
                when = short_time(details.get("deleted_at")) if details.get("deleted_at") else ""
                who = f" by {details['deleted_by']}" if details.get("deleted_by") else ""
                raise NotFound(
                    f"{service} was deleted (version {details.get('version')}{', ' + when if when else ''}{who}); "
                    f"restore it with: config-ledger rollback {service}"
                ) from None
            if details.get("version") is not None or details.get("at") is not None:
                where = f"version {details['version']}" if details.get("version") is not None else \
                    f"a config at {details.get('at')}"
                raise NotFound(f"{service} has no {where}; see: config-ledger history {service}") from None
            raise NotFound(f"{exc.message}; see: config-ledger services") from None


async def cmd_get(ctx: CliContext, args: argparse.Namespace) -> int:
    params: dict[str, str] = {}
    if args.at is not None and args.version is not None:
        raise UsageError("get: give --at or --version, not both")
    if args.at is not None:
        params["at"] = format_instant(parse_instant(args.at, what="--at"))
    if args.version is not None:
        if args.version < 1:
            raise UsageError(f"--version: versions start at 1, got {args.version}")
        params["version"] = str(args.version)
    body = (await fetch_config(ctx, args.service, params)).body
    if ctx.out.format is None and getattr(args, "json", False):
        ctx.out.emit_json(body)  # --json: the API's response as-is (with version and metadata)
        return ExitCode.OK
    document = body.get("config") if isinstance(body, Mapping) and "config" in body else body
    value = lookup(document, key_path(args.key), what=args.service) if args.key else document
    fmt = ctx.out.format
    if fmt == "yaml":
        ctx.out.emit_yaml(value)
    elif fmt == "raw" or (fmt is None and args.key and not ctx.out.human and not isinstance(value, dict | list)):
        ctx.out.write(plain(value))
    elif fmt in ("json", "tsv") or not ctx.out.human:
        ctx.out.emit_json(value)  # piped: the bare document, ready for jq or `set -`
    else:
        meta = [f"version [bold]{_version_of(body)}[/]"]
        for key, label in (("kind", ""), ("actor", "by "), ("updated_at", "at ")):
            if isinstance(body, Mapping) and body.get(key):
                meta.append(f"{label}{short_time(body[key]) if key.endswith('_at') else body[key]}")
        ctx.out.print(f"[bold cyan]{args.service}[/]{'.' + args.key if args.key else ''}  " + "  ".join(meta))
        ctx.out.document(value)
    return ExitCode.OK


async def cmd_set(ctx: CliContext, args: argparse.Namespace) -> int:
    document = load_document(args.file, ctx.stdin, args.format)
    headers, params = _write_options(args)
    async with ctx.api() as api:
        resp = await api.request("POST", api.path("config", args.service), body=document,
                                 headers=headers, params=params)
    return _show_write(ctx, args.service, resp, "set")


async def cmd_patch(ctx: CliContext, args: argparse.Namespace) -> int:
    text = ctx.stdin.read() if args.patch == "-" else args.patch
    patch = parse_object(text, what="merge patch", fmt=args.format)
    headers, params = _write_options(args)
    async with ctx.api() as api:
        resp = await api.request("PATCH", api.path("config", args.service), body=patch,
                                 content_type=MERGE_PATCH, headers=headers, params=params)
    return _show_write(ctx, args.service, resp, "patched")


async def cmd_delete(ctx: CliContext, args: argparse.Namespace) -> int:
    headers, params = _write_options(args)
    async with ctx.api() as api:
        resp = await api.request("DELETE", api.path("config", args.service), headers=headers, params=params)
    return _show_write(ctx, args.service, resp, "deleted")


async def cmd_rollback(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.to is None:  # like `kubectl rollout undo`: the version before the current one
        target = await _previous_version(ctx, args.service)
    else:
        target = parse_version_or_instant(args.to, what="--to")
    body: dict[str, Any] = (
        {"to_version": target.version} if target.version is not None else {"to_time": target.query_value()}
    )
    headers, params = _write_options(args)
    async with ctx.api() as api:
        resp = await api.request("POST", api.path("config", args.service, "rollback"), body=body,
                                 headers=headers, params=params)
    return _show_write(ctx, args.service, resp, f"rolled back to {target}:")


async def _previous_version(ctx: CliContext, service: str) -> VersionOrInstant:
    async with ctx.api() as api:
        resp = await api.request("GET", api.path("config", "history", service), params={"limit": "2"})
    versions = _items(resp.body, "versions")
    if len(versions) < 2:
        raise UsageError(f"{service} has only one version: there is nothing to roll back to")
    current = versions[0]
    target = int(versions[1]["version"])
    if current.get("kind") == "deleted" or target >= 1:
        return VersionOrInstant(version=target)
    raise UsageError(f"{service}: no earlier version")


def _items(body: Any, *keys: str) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for key in keys:
            if isinstance(body.get(key), list):
                return list(body[key])
    return []


def _change_of(item: Mapping[str, Any]) -> str:
    """What a version changed, as key diffs (``~ /db/pool: 10 → 20``), not the whole document."""
    if item.get("kind") == "deleted":
        return "(deleted)"
    rows = _diff_rows(item.get("diff"), leaves=True) if isinstance(item.get("diff"), Mapping) else None
    if rows:
        return "\n".join(_diff_line(*row) for row in rows)
    if isinstance(item.get("diff"), Mapping):
        return "(no change)"
    return compact_json(item.get("change"))


async def cmd_history(ctx: CliContext, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    params = {"limit": str(args.limit)}
    if args.cursor:
        params["cursor"] = args.cursor
    async with ctx.api() as api:
        resp = await api.request("GET", api.path("config", "history", args.service), params=params)
    if ctx.out.json_mode:
        ctx.out.emit_json(resp.body)
        return ExitCode.OK
    rows = []
    for item in _items(resp.body, "history", "versions", "items", "events"):
        if not isinstance(item, Mapping):
            continue
        rows.append((
            item.get("version"), item.get("kind"), short_time(item.get("occurred_at") or item.get("stored_at")),
            item.get("actor"), item.get("reason"), _change_of(item),
        ))
    if not ctx.out.human:
        ctx.out.table(None, ["version", "kind", "at", "actor", "reason", "change"], rows)
    else:  # like `git log`: a line per version, then its key diffs, wrapped between words
        for version, kind, at, actor, reason, change in rows:
            ctx.out.wrapped(f"v{version}  {kind}  {at}  {actor}" + (f"  “{reason}”" if reason else ""),
                            style="bold")
            for diff_line in change.split("\n"):
                ctx.out.wrapped(diff_line, indent="    ")
    cursor = resp.body.get("next_cursor") if isinstance(resp.body, Mapping) else None
    if cursor:
        ctx.out.note(f"more: config-ledger history {args.service} --cursor {cursor}")
    return ExitCode.OK


async def cmd_diff(ctx: CliContext, args: argparse.Namespace) -> int:
    old = parse_version_or_instant(args.a, what="A")
    new = parse_version_or_instant(args.b, what="B")
    params = {"from": old.query_value(), "to": new.query_value()}
    async with ctx.api() as api:
        try:
            resp = await api.request("GET", api.path("config", args.service, "diff"), params=params)
        except NotFound as exc:
            raise NotFound(f"{exc.message}; see: config-ledger history {args.service}") from None
    if ctx.out.json_mode:
        ctx.out.emit_json(resp.body)
        return ExitCode.OK
    rows = _diff_rows(resp.body)
    title = f"{args.service}: {old} → {new}"
    if not rows:
        ctx.out.print(f"{title}: [green]no differences[/]")
        return ExitCode.OK
    ctx.out.table(title, ["op", "path", "from", "to"], rows, styles=["bold", "cyan", "red", "green"],
                  wrap=("path", "from", "to"))
    return ExitCode.OK


def _leaves(path: str, value: Any) -> list[tuple[str, Any]]:
    """``/a: {"b": 1, "c": 2}`` -> ``[("/a/b", 1), ("/a/c", 2)]`` (an added subtree, key by key)."""
    if isinstance(value, Mapping) and value:
        out: list[tuple[str, Any]] = []
        for key in sorted(value):
            out.extend(_leaves(f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}", value[key]))
        return out
    return [(path, value)]


def _diff_line(op: str, path: Any, before: str, after: str) -> str:
    if op.startswith("~"):
        return f"~ {path}: {before} → {after}"
    if op.startswith("+"):
        return f"+ {path}: {after}"
    return f"- {path}"


def _diff_rows(body: Any, *, leaves: bool = False) -> list[tuple[str, Any, str, str]]:
    """``{"added": [{path, value}], "removed": [{path, value}], "changed": [{path, from, to}]}``,
    possibly under a ``"diff"`` key, as (op, path, from, to) rows sorted by path; with ``leaves``,
    an added or removed object is shown key by key."""
    if isinstance(body, Mapping) and isinstance(body.get("diff"), Mapping):
        body = body["diff"]
    if not isinstance(body, Mapping):
        return []
    rows: list[tuple[str, Any, str, str]] = []
    for item in body.get("added") or []:
        for path, value in _leaves(str(item.get("path")), item.get("value")) if leaves else \
                [(item.get("path"), item.get("value"))]:
            rows.append(("+ added", path, "", compact_json(value)))
    for item in body.get("removed") or []:
        for path, value in _leaves(str(item.get("path")), item.get("value")) if leaves else \
                [(item.get("path"), item.get("value"))]:
            rows.append(("- removed", path, compact_json(value), ""))
    for item in body.get("changed") or []:
        rows.append(("~ changed", item.get("path"), compact_json(item.get("from")),
                     compact_json(item.get("to"))))
    return sorted(rows, key=lambda r: str(r[1]))


async def cmd_snapshot(ctx: CliContext, args: argparse.Namespace) -> int:
    params = {"at": format_instant(parse_instant(args.at, what="--at"))}
    async with ctx.api() as api:
        resp = await api.request("GET", api.path("snapshot"), params=params)
    if ctx.out.json_mode:
        ctx.out.emit_json(resp.body)
        return ExitCode.OK
    rows = _snapshot_rows(resp.body, limit=None if not ctx.out.human else max(ctx.out.width - 40, 20))
    ctx.out.table(f"every service as of {params['at']}", ["service", "version", "config"], rows,
                  styles=["bold cyan", "bold", None], wrap=("config",))
    return ExitCode.OK


def _snapshot_rows(body: Any, *, limit: int | None = 80) -> list[tuple[Any, ...]]:
    services: Any = body.get("services", body) if isinstance(body, Mapping) else body
    rows: list[tuple[Any, ...]] = []
    if isinstance(services, Mapping):
        for name, item in sorted(services.items()):
            if isinstance(item, Mapping) and "config" in item:
                rows.append((name, item.get("version"), compact_json(item.get("config"), limit)))
            elif name not in ("at", "as_of"):
                rows.append((name, "", compact_json(item, limit)))
    elif isinstance(services, list):
        for item in services:
            if isinstance(item, Mapping):
                rows.append((item.get("service"), item.get("version"), compact_json(item.get("config"), limit)))
    return rows


async def cmd_services(ctx: CliContext, args: argparse.Namespace) -> int:
    async with ctx.api() as api:
        resp = await api.request("GET", "/api/v1/config")
    if ctx.out.json_mode:
        ctx.out.emit_json(resp.body)
        return ExitCode.OK
    rows = [
        (item.get("service"), item.get("version"), item.get("kind", ""), short_time(item.get("updated_at")))
        for item in _items(resp.body, "services", "items")
        if isinstance(item, Mapping)
    ]
    ctx.out.table("services", ["service", "version", "kind", "updated"], rows, styles=["bold cyan", "bold"])
    return ExitCode.OK


def _describe_diff(diff: Any) -> str | None:
    """``~ /a/b: 100 → 250, + /c: true`` from the API's ``{"added", "removed", "changed"}``."""
    rows = _diff_rows(diff)
    if not rows:
        return None
    return ", ".join(_diff_line(*row) for row in rows)
