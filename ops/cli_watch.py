"""``config-ledger watch SERVICE``: print a service's changes as they happen (Server-Sent Events),
one line per change with its key diff; reconnects and resumes (``Last-Event-ID``) after a lost
stream. The only admin command that needs an event loop (aiohttp streams the events)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from typing import Any

from ledger.errors import NotFound, Unavailable

from .cli_admin import _describe_diff, _version_of, fetch_config
from .cli_context import CliContext
from .cli_exit import ExitCode
from .cli_render import compact_json

__all__ = ["cmd_watch"]


def _describe_event(service: str, kind: str, data: Any) -> str:
    """One line per event: ``billing v3 patched by alice (why): ~ /a: 1 → 2``."""
    if not isinstance(data, Mapping):
        return f"{service}: {data}"
    nested = data.get("event")
    event: Mapping[str, Any] = nested if isinstance(nested, Mapping) else data
    parts = [f"{event.get('service') or service} v{_version_of(event)}"]
    if kind == "config":
        parts.append("(current)")
    elif event.get("kind"):
        parts.append(str(event["kind"]))
    if event.get("actor") and kind != "config":
        parts.append(f"by {event['actor']}")
    if event.get("reason") and kind != "config":
        parts.append(f"({event['reason']})")
    text = " ".join(parts)
    changes = _describe_diff(event.get("diff")) if kind != "config" else None
    if changes:
        return f"{text}: {changes}"
    if "config" in event:
        return f"{text}: {compact_json(event.get('config'))}"
    return text


async def cmd_watch(ctx: CliContext, args: argparse.Namespace) -> int:
    """Print every change of SERVICE as it happens; reconnect (resuming) after a lost stream."""
    last_id: str | None = None
    connected_once = False
    delay = 0.5
    try:  # say at once when there is nothing yet, rather than print nothing until the first change
        await fetch_config(ctx, args.service)
    except NotFound as exc:
        if not ctx.out.json_mode:
            ctx.out.note(f"{exc.message.split(';')[0]}; waiting for its next version (Ctrl-C to stop)")
    async with ctx.api(timeout=10.0) as api:
        path = api.path("config", args.service, "watch")
        while True:
            try:
                async for sse in api.events(path, last_event_id=last_id):
                    if not connected_once and not ctx.out.json_mode:
                        ctx.out.note(f"watching {args.service} at {ctx.api_url} (Ctrl-C to stop)")
                    connected_once, delay = True, 0.5
                    if sse.id:
                        last_id = sse.id
                    _show_event(ctx, args.service, sse.event, sse.json())
            except Unavailable as exc:
                if not connected_once:
                    raise
                ctx.out.warn(f"{exc}; reconnecting in {delay:.1f}s")
            else:
                if not connected_once:
                    return ExitCode.OK  # the server ended the stream before any event
                ctx.out.warn(f"the API closed the stream; reconnecting in {delay:.1f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def _show_event(ctx: CliContext, service: str, kind: str, data: Any) -> None:
    if kind in ("ping", "keepalive", "heartbeat"):
        return
    if ctx.out.json_mode:
        ctx.out.emit_json({"event": kind, "data": data}, line=True)
    elif kind in ("caught_up", "caught-up", "ready"):
        ctx.out.note("(caught up; live changes follow)")
    elif kind == "error":
        ctx.out.warn(str(data.get("error", data)) if isinstance(data, Mapping) else str(data))
    else:
        ctx.out.line(_describe_event(service, kind, data))
