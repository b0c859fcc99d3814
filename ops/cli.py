"""``config-ledger``: run the stack, administer configs through the API, audit the stream.

The composition root of the command line: the only place that reads ``os.environ`` and the
real standard streams; everything below receives them. ``main`` turns every error of the
project's hierarchy into one line on stderr and a documented exit code (``cli_exit``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import IO, Any, NoReturn

from ledger.errors import LedgerError

from . import cli_admin, cli_audit, cli_fleet, cli_servers
from .cli_context import DEFAULT_API_URL, DEFAULT_NATS_URL, CliContext
from .cli_exit import EPILOG, ExitCode, exit_code_for
from .cli_render import Output

__all__ = ["main", "build_parser"]

Handler = Callable[[CliContext, argparse.Namespace], "int | Awaitable[int]"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="config-ledger",
        description="Config Ledger: an event-sourced configuration service on NATS JetStream.\n\n"
        "  config-ledger up                       run everything (NATS, PostgreSQL, projector, API)\n"
        "  config-ledger get SERVICE              current config (admin commands talk to the API)\n"
        "  config-ledger verify                   check every hash chain (auditors read the stream)",
        epilog=EPILOG,
        formatter_class=_formatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api_opts = _Parser(add_help=False)
    api_opts.add_argument("--url", metavar="URL",
                          help=f"API base URL (env CONFIG_LEDGER_URL, default {DEFAULT_API_URL})")
    api_opts.add_argument("--token", metavar="TOKEN", help="bearer token (env CONFIG_LEDGER_TOKEN)")
    api_opts.add_argument("--json", action="store_true", help="print JSON for scripts")
    nats_opts = _Parser(add_help=False)
    nats_opts.add_argument("--nats-url", metavar="URL",
                           help=f"NATS server(s), comma-separated (env NATS_URL, default {DEFAULT_NATS_URL})")
    db_opts = _Parser(add_help=False)
    db_opts.add_argument("--database-url", metavar="URL", help="PostgreSQL URL (env DATABASE_URL)")
    json_opt = _Parser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="print JSON for scripts")
    write_opts = _Parser(add_help=False)
    write_opts.add_argument("--reason", "-m", metavar="TEXT", help="why (sent as X-Change-Reason)")
    write_opts.add_argument("--if-version", type=int, metavar="N",
                            help="only if the service is at version N (409 -> exit 4 otherwise)")
    write_opts.add_argument("--idempotency-key", metavar="KEY", help="retry-safe key for this write")

    def command(name: str, handler: Handler, help_text: str, *parents: argparse.ArgumentParser,
                into: Any = sub) -> argparse.ArgumentParser:
        p = into.add_parser(name, help=help_text, description=help_text, parents=list(parents),
                            epilog=EPILOG, formatter_class=_formatter)
        p.set_defaults(handler=handler)
        return p

    # --- running the system -----------------------------------------------------------------
    up = command("up", cli_servers.cmd_up, "run the whole stack in the foreground (what `make run` does)")
    up.description = (
        "Run NATS, PostgreSQL, the projector and the API in the foreground (what `make run` does);\n"
        "Ctrl-C stops everything and keeps the data.\n\n"
        "environment:\n"
        "  LEDGER_DATA_DIR      data folder (default ./.ledger-data)\n"
        "  API_PORT, API_HOST   where the API listens (default 127.0.0.1:7000)\n"
        "  NATS_URL             use this NATS instead of starting one\n"
        "  DATABASE_URL         use this PostgreSQL database instead of starting one\n"
        "  LEDGER_NATS_PORT     port of the embedded NATS (default: a free one)\n"
        "  LEDGER_PG_PORT       port of the embedded PostgreSQL (default: a free one)"
    )
    up.add_argument("--auth", action="store_true",
                    help="require bearer tokens; an admin token is generated into <data>/tokens.yaml")
    up.add_argument("--no-seed", dest="seed", action="store_false",
                    help="do not create the example service (polygon-historical-downloader)")
    up.add_argument("--ready-timeout", type=float, default=90.0, metavar="S",
                    help="seconds to wait for the API to be ready (default 90)")

    streams = sub.add_parser("streams", help="manage the JetStream stream(s) of streams.yaml")
    streams_sub = streams.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply_p = command("apply", cli_servers.cmd_streams_apply, "create or update the streams of streams.yaml",
                      nats_opts, into=streams_sub)
    apply_p.add_argument("--file", default=None, help="streams file (default ./streams.yaml)")
    apply_p.add_argument("--dry-run", action="store_true", help="show the drift, change nothing (exit 1 if any)")
    apply_p.add_argument("--replicas", type=int, metavar="N", help="override num_replicas (3 in a cluster)")

    projector = sub.add_parser("projector", help="the projector: stream -> PostgreSQL")
    projector_sub = projector.add_subparsers(dest="action", required=True, metavar="ACTION")
    command("run", cli_servers.cmd_projector, "project the stream into PostgreSQL (foreground; a second one stands by)",
            nats_opts, db_opts, into=projector_sub)
    rebuild = command("rebuild", cli_servers.cmd_projector,
                      "rebuild the projection from the whole stream, then swap it in (no read downtime)",
                      nats_opts, db_opts, into=projector_sub)
    rebuild.add_argument("--lock-timeout", metavar="S", help="seconds to wait for the leader lock (default 30)")
    rebuild.add_argument("--accept-regression", action="store_true",
                         help="rebuild even if the stream ends before the checkpoint")
    rebuild.add_argument("--progress", choices=("auto", "rich", "plain", "none"), help="progress display")
    status = command("status", cli_servers.cmd_projector, "the projection's state, checkpoint and lag (exit 4 if failed)",
                     nats_opts, db_opts, into=projector_sub)
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    command("migrate", cli_servers.cmd_projector, "apply pending SQL migrations", nats_opts, db_opts, into=projector_sub)

    api = sub.add_parser("api", help="the HTTP API")
    api_sub = api.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = command("serve", cli_servers.cmd_api_serve, "serve the HTTP API (foreground)", nats_opts, db_opts,
                    into=api_sub)
    serve.add_argument("--host", help="address to listen on (env API_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env API_PORT, default 7000)")

    # --- admin: through the API -------------------------------------------------------------
    get = command("get", cli_admin.cmd_get, "a service's config: current, at an instant or a version",
                  api_opts)
    get.add_argument("service")
    get.add_argument("--at", metavar="T", help="as of an RFC 3339 instant")
    get.add_argument("--version", type=int, metavar="N", help="version N")

    set_p = command("set", cli_admin.cmd_set, "replace a service's whole config with a document",
                    api_opts, write_opts)
    set_p.add_argument("service")
    set_p.add_argument("file", metavar="FILE|-", help="JSON (or .yaml) file, or - for stdin")

    patch = command("patch", cli_admin.cmd_patch, "change part of a config (RFC 7396 merge patch)",
                    api_opts, write_opts)
    patch.add_argument("service")
    patch.add_argument("patch", metavar="JSON|-", help='e.g. \'{"operational": {"batch_size": 200}}\'')

    delete = command("delete", cli_admin.cmd_delete, "delete a service's config (history stays)",
                     api_opts, write_opts)
    delete.add_argument("service")

    history = command("history", cli_admin.cmd_history, "a service's versions, newest first", api_opts)
    history.add_argument("service")
    history.add_argument("--limit", type=int, default=20, help="versions per page (default 20)")
    history.add_argument("--cursor", help="continue after a previous page")

    diff = command("diff", cli_admin.cmd_diff, "key-level differences between two versions or instants",
                   api_opts)
    diff.add_argument("service")
    diff.add_argument("a", metavar="A", help="version or RFC 3339 instant")
    diff.add_argument("b", metavar="B", help="version or RFC 3339 instant")

    rollback = command("rollback", cli_admin.cmd_rollback,
                       "make an earlier version current again (a new rolled_back event)", api_opts, write_opts)
    rollback.add_argument("service")
    rollback.add_argument("--to", required=True, metavar="N|T", help="version N or RFC 3339 instant T")

    watch = command("watch", cli_admin.cmd_watch, "print a service's changes as they happen", api_opts)
    watch.add_argument("service")

    snapshot = command("snapshot", cli_admin.cmd_snapshot, "every service's config as of one instant",
                       api_opts)
    snapshot.add_argument("--at", required=True, metavar="T", help="RFC 3339 instant, or now")

    command("services", cli_admin.cmd_services, "every service with its current version", api_opts)
    cli_fleet.add_commands(command, sub, api_opts)  # instances, rollout, schedule (issue 16)

    # --- audit: straight from the stream ----------------------------------------------------
    replay = command("replay", cli_audit.cmd_replay,
                     "replay a service's events from the stream up to an instant", nats_opts, json_opt)
    replay.add_argument("service")
    replay.add_argument("--until", metavar="T", default="now", help="RFC 3339 instant (default now)")

    verify = command("verify", cli_audit.cmd_verify,
                     "verify hash chains and version continuity on the stream (exit 1 if broken)",
                     nats_opts, json_opt)
    verify.add_argument("service", nargs="?", help="one service (default: every service)")
    return parser


# --- entry point ---------------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run one command; return its exit code (see ``cli_exit``)."""
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return int(exc.code or 0) if not isinstance(exc.code, str) else ExitCode.USAGE
    columns = environ.get("COLUMNS", "")
    out = Output(stdout, stderr, json_mode=getattr(args, "json", False),
                 color=False if environ.get("NO_COLOR") else None,
                 width=int(columns) if columns.isdigit() else None)
    ctx = CliContext(
        environ=environ,
        out=out,
        stdin=stdin or sys.stdin.buffer,
        api_url=getattr(args, "url", None) or environ.get("CONFIG_LEDGER_URL") or DEFAULT_API_URL,
        token=getattr(args, "token", None) or environ.get("CONFIG_LEDGER_TOKEN") or None,
        nats_url=getattr(args, "nats_url", None) or environ.get("NATS_URL") or DEFAULT_NATS_URL,
    )
    try:
        result = args.handler(ctx, args)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        return int(result)
    except LedgerError as exc:
        out.error(exc.message)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `config-ledger history x | head`
        _silence_stdout(stdout)
        return ExitCode.OK


async def _awaited(result: Awaitable[int]) -> int:
    return await result


def _silence_stdout(stdout: IO[str]) -> None:
    """After EPIPE, point fd 1 at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
