"""The commands that run the system: ``up``, ``streams apply``, ``projector …``, ``api serve``.

``projector`` and ``api serve`` run ``python -m projector`` / ``python -m api`` in the foreground
(the CLI talks to the other packages through processes and HTTP, never by importing them); their
exit codes are the CLI's.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from types import FrameType

from ledger.__main__ import streams_apply

from .cli_context import CliContext
from .cli_procs import die_with_parent
from .stack import StackSettings, UpOptions, default_streams_file, run_up

__all__ = ["cmd_up", "cmd_streams_apply", "cmd_projector", "cmd_api_serve", "run_module"]


def cmd_up(ctx: CliContext, args: argparse.Namespace) -> int:
    settings = StackSettings.from_env(ctx.environ)
    options = UpOptions(auth=args.auth, seed=args.seed, ready_timeout=args.ready_timeout,
                        cluster=getattr(args, "cluster", None) or 0)
    return run_up(settings, options, ctx.out.console, ctx.environ)


async def cmd_streams_apply(ctx: CliContext, args: argparse.Namespace) -> int:
    file = args.file or str(default_streams_file())
    with contextlib.redirect_stdout(ctx.out.stdout):  # it reports with print()
        return await streams_apply(file, dry_run=args.dry_run, replicas=args.replicas, nats_url=ctx.nats_url)


def _server_env(ctx: CliContext, args: argparse.Namespace) -> dict[str, str]:
    env = dict(ctx.environ)
    env["NATS_URL"] = ctx.nats_url
    if getattr(args, "database_url", None):
        env["DATABASE_URL"] = args.database_url
    return env


def cmd_projector(ctx: CliContext, args: argparse.Namespace) -> int:
    argv = ["projector", args.action]
    if getattr(args, "lock_timeout", None):
        argv += ["--lock-timeout", args.lock_timeout]
    if getattr(args, "accept_regression", False):
        argv.append("--accept-regression")
    if getattr(args, "progress", None):
        argv += ["--progress", args.progress]
    if getattr(args, "json", False):
        argv.append("--json")
    return run_module(argv, _server_env(ctx, args))


def cmd_api_serve(ctx: CliContext, args: argparse.Namespace) -> int:
    env = _server_env(ctx, args)
    if args.host:
        env["API_HOST"] = args.host
    if args.port is not None:
        env["API_PORT"] = str(args.port)
    if args.workers is not None:
        env["API_WORKERS"] = str(args.workers)
    return run_module(["api"], env)


def run_module(module_argv: Sequence[str], env: Mapping[str, str]) -> int:
    """``python -m <module_argv>`` in the foreground; its exit code is ours.

    It runs in a process group of its own, so a terminal's Ctrl-C reaches only us, and we
    forward SIGINT and SIGTERM to it exactly once, whoever sent them; it dies with us.
    """
    proc = subprocess.Popen([sys.executable, "-m", *module_argv], env=dict(env), process_group=0,
                            preexec_fn=die_with_parent)

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signum)

    in_main_thread = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM) if in_main_thread else ()
    previous = {sig: signal.signal(sig, forward) for sig in signals}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code if code >= 0 else 128 - code
