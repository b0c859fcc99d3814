"""The fleet commands' arguments (``instances``, ``rollout``, ``schedule``): registered with
``build_parser`` without importing their implementation (``ops.cli_fleet``), which loads rich."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_commands"]


def add_commands(command: Callable[..., argparse.ArgumentParser], sub: Any) -> None:
    """Register the fleet commands with ``build_parser``'s ``command`` helper."""
    inst = command("instances", "cli_fleet:cmd_instances",
                   "live instances of a service: labels, applied version, state, last seen")
    inst.add_argument("service")
    inst.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    inst.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between refreshes (2)")
    inst.add_argument("--count", type=int, metavar="N", help="with --watch: stop after N refreshes")
    inst.add_argument("--ttl", type=float, metavar="S", help="seconds of silence after which an instance is dead")

    change = argparse.ArgumentParser(add_help=False)
    what = change.add_mutually_exclusive_group(required=True)
    what.add_argument("--patch", metavar="JSON|-", help="a merge patch of the current config")
    what.add_argument("--config", metavar="FILE|-", help="a whole document (JSON or .yaml) replacing the config")
    reason = argparse.ArgumentParser(add_help=False)
    reason.add_argument("--reason", "-m", metavar="TEXT", help="why (recorded on the ledger)")

    parent = sub.add_parser("rollout", help="staged rollouts of a change to a service's instances")
    rollout_sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = command("start", "cli_fleet:cmd_rollout_start", "start (or schedule) a staged rollout", change,
                    reason, into=rollout_sub)
    start.add_argument("service")
    start.add_argument("--stage", action="append", required=True, metavar="SPEC", dest="stages",
                       help="a stage, in order: labels and/or a percentage, e.g. canary=true, 25%%, "
                            "zone=a,50%% (repeat; the last usually 100%%)")
    start.add_argument("--bake", type=float, metavar="S", help="gate: seconds a stage bakes (30)")
    start.add_argument("--min-applied", type=float, metavar="F", help="gate: fraction that must apply (0.9)")
    start.add_argument("--max-rejected", type=int, metavar="N", help="gate: abort above N rejections (0)")
    start.add_argument("--not-before", metavar="T", help="start at this RFC 3339 instant instead of now")
    status = command("status", "cli_fleet:cmd_rollout_status", "a rollout's state, stage and per-stage counts",
                     into=rollout_sub)
    status.add_argument("service")
    status.add_argument("id")
    for verb, text in (("promote", "promote the next stage (resumes a paused rollout)"),
                       ("pause", "stop automatic promotion (the gate still aborts on rejections)"),
                       ("abort", "abort: every instance returns to the base version")):
        p = command(verb, "cli_fleet:cmd_rollout_action", text, reason, into=rollout_sub)
        p.add_argument("service")
        p.add_argument("id")

    parent = sub.add_parser("schedule", help="changes applied by the rollout controller at an instant")
    schedule_sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = command("create", "cli_fleet:cmd_schedule_create", "store a write now, applied at --at", change,
                     reason, into=schedule_sub)
    create.add_argument("service")
    create.add_argument("--at", required=True, metavar="T", help="RFC 3339 instant, with a time zone")
    cancel = command("cancel", "cli_fleet:cmd_schedule_cancel", "cancel a pending scheduled change or rollout",
                     reason, into=schedule_sub)
    cancel.add_argument("service")
    cancel.add_argument("id")


# --- instances -------------------------------------------------------------------------------------


