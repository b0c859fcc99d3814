"""``config-ledger``: run the stack, administer configs through the API, audit the stream.

The composition root of the command line: the only place that reads ``os.environ`` and the
real standard streams; everything below receives them. ``main`` turns every error of the
project's hierarchy into one line on stderr and the project's exit code (``ledger.exit_codes``).

Start-up is kept small: command modules (and rich, nats, pydantic) are imported only when
their command runs (``handler="module:function"``), so ``--help`` and ``get`` load neither
(see ``bench/bench_cli.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import IO, Any, NoReturn

from ledger import defaults
from ledger.errors import LedgerError
from ledger.exit_codes import EXIT_CODES_HELP, ExitCode, exit_code_for

from . import cli_fleet_parser
from .cli_help import EXAMPLES, completion_script, suggestion

__all__ = ["main", "build_parser"]

DEFAULT_API_URL = defaults.HUB_URL
DEFAULT_NATS_URL = defaults.NATS_URL
OUTPUTS = ("table", "tsv", "json", "yaml", "raw")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (exit 2) with a suggestion for a typo."""

    def error(self, message: str) -> NoReturn:
        hint = suggestion(message, self)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}{hint} (see {self.prog} --help)\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("config-ledger")
        except PackageNotFoundError:
            number = "unknown (not installed)"
        sys.stdout.write(f"config-ledger {number}\n")
        parser.exit(0)


def _global_options(parser: argparse.ArgumentParser) -> None:
    """The flags every command takes, accepted before or after the command (``--url X get s``)."""
    s = argparse.SUPPRESS
    g = parser.add_argument_group("global options (before or after the command)")
    g.add_argument("--url", metavar="URL", default=s,
                   help=f"API base URL (env CONFIG_LEDGER_URL; default: the running `up`, else {DEFAULT_API_URL})")
    g.add_argument("--token", metavar="TOKEN", default=s, help="bearer token (env CONFIG_LEDGER_TOKEN)")
    g.add_argument("--nats-url", metavar="URL", default=s,
                   help="NATS server(s), comma-separated (env NATS_URL; default: the running `up`)")
    g.add_argument("--database-url", metavar="URL", default=s, help="PostgreSQL URL (env DATABASE_URL)")
    g.add_argument("-o", "--output", choices=OUTPUTS, default=s,
                   help="table (people), tsv (tab-separated), json, yaml, raw (get: bare values)")
    g.add_argument("--json", action="store_true", default=s, help="the API's JSON response, as-is")
    g.add_argument("--no-headers", action="store_true", default=s, help="tables without the header line")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="config-ledger",
        description="Config Ledger: an event-sourced configuration service on NATS JetStream.\n\n"
        "  config-ledger up                       run everything (NATS, PostgreSQL, projector, API)\n"
        "  config-ledger get SERVICE              current config (admin commands talk to the API)\n"
        "  config-ledger verify                   check every hash chain (auditors read the stream)",
        epilog=EXIT_CODES_HELP,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action=_Version)
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    write_opts = _Parser(add_help=False)
    write_opts.add_argument("--reason", "-m", metavar="TEXT", help="why (recorded with the change)")
    write_opts.add_argument("--if-version", type=int, metavar="N",
                            help="only if the service is at version N (exit 4 otherwise)")
    write_opts.add_argument("--idempotency-key", metavar="KEY", help="retry-safe key for this write")
    write_opts.add_argument("--plan", action="store_true",
                            help="dry run: show the version, diff, schema and policy results; append nothing")
    doc_opts = _Parser(add_help=False)
    doc_opts.add_argument("--format", choices=("auto", "json", "yaml"), default="auto",
                          help="of the document read (default: by file extension; stdin: JSON, else YAML)")

    def command(name: str, handler: str, help_text: str, *parents: argparse.ArgumentParser,
                into: Any = sub) -> argparse.ArgumentParser:
        example = EXAMPLES.get(name)
        epilog = (f"example:\n  {example}\n\n" if example else "") + EXIT_CODES_HELP
        p = into.add_parser(name, help=help_text, description=help_text, parents=list(parents),
                            epilog=epilog, formatter_class=_formatter)
        _global_options(p)
        p.set_defaults(handler=handler)
        return p

    # --- running the system -----------------------------------------------------------------
    up = command("up", "cli_servers:cmd_up", "run the whole stack in the foreground (what `make run` does)")
    up.description = (
        "Run NATS, PostgreSQL, the projector and the API in the foreground (what `make run` does);\n"
        "Ctrl-C stops everything and keeps the data. Other commands find the running stack\n"
        "through <data>/endpoints.json.\n\n"
        "environment:\n"
        "  LEDGER_DATA_DIR      data folder (default ./.ledger-data)\n"
        "  API_PORT, API_HOST   where the API listens (default {defaults.API_HOST}:{defaults.API_PORT})\n"
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
    up.add_argument("--cluster", type=int, metavar="N",
                    help="run NATS as a local N-node cluster (N >= 3; LEDGER_NATS_PORT: the first "
                         "node's port) with the stream at 3 replicas, to try failover on one machine")

    streams = sub.add_parser("streams", help="manage the JetStream stream(s) of streams.yaml")
    streams_sub = streams.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    apply_p = command("apply", "cli_servers:cmd_streams_apply", "create or update the streams of streams.yaml",
                      into=streams_sub)
    apply_p.add_argument("--file", default=None, help="streams file (default ./streams.yaml)")
    apply_p.add_argument("--dry-run", action="store_true", help="show the drift, change nothing (exit 6 if any)")
    apply_p.add_argument("--replicas", type=int, metavar="N", help="override num_replicas (3 in a cluster)")

    projector = sub.add_parser("projector", help="the projector: stream -> PostgreSQL")
    projector_sub = projector.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    command("run", "cli_servers:cmd_projector",
            "project the stream into PostgreSQL (foreground; a second one stands by)", into=projector_sub)
    rebuild = command("rebuild", "cli_servers:cmd_projector",
                      "rebuild the projection from the whole stream, then swap it in (no read downtime)",
                      into=projector_sub)
    rebuild.add_argument("--lock-timeout", metavar="S", help="seconds to wait for the leader lock (default 30)")
    rebuild.add_argument("--accept-regression", action="store_true",
                         help="rebuild even if the stream ends before the checkpoint")
    rebuild.add_argument("--progress", choices=("auto", "rich", "plain", "none"), help="progress display")
    command("status", "cli_servers:cmd_projector",
            "the projection's state, checkpoint and lag (exit 5 if fail-stopped)", into=projector_sub)
    command("migrate", "cli_servers:cmd_projector", "apply pending SQL migrations", into=projector_sub)

    api = sub.add_parser("api", help="the HTTP API")
    api_sub = api.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    serve = command("serve", "cli_servers:cmd_api_serve", "serve the HTTP API (foreground)", into=api_sub)
    serve.add_argument("--host", help=f"address to listen on (env API_HOST, default {defaults.API_HOST})")
    serve.add_argument("--port", type=int, help=f"port (env API_PORT, default {defaults.API_PORT})")
    serve.add_argument("--workers", type=int, help="API processes sharing the port (env API_WORKERS, default 1)")

    # --- admin: through the API -------------------------------------------------------------
    get = command("get", "cli_admin:cmd_get",
                  "a service's config (or one key): current, at an instant or a version")
    get.add_argument("service")
    get.add_argument("key", nargs="?", help="a key path: db.pool, or a JSON pointer /db/pool")
    get.add_argument("--at", metavar="T", help="as of an RFC 3339 instant")
    get.add_argument("--version", type=int, metavar="N", help="version N")

    edit = command("edit", "cli_edit:cmd_edit",
                   "edit a service's config in $EDITOR; written back only if nobody changed it meanwhile",
                   write_opts)
    edit.add_argument("service")

    set_p = command("set", "cli_admin:cmd_set", "replace a service's whole config with a document",
                    write_opts, doc_opts)
    set_p.add_argument("service")
    set_p.add_argument("file", metavar="FILE|-", help="JSON or YAML file, or - for stdin")

    patch = command("patch", "cli_admin:cmd_patch", "change part of a config (RFC 7396 merge patch)",
                    write_opts, doc_opts)
    patch.add_argument("service")
    patch.add_argument("patch", metavar="PATCH|-", help='JSON or YAML, e.g. \'{"db": {"pool": 20}}\', or -')

    delete = command("delete", "cli_admin:cmd_delete", "delete a service's config (history stays)", write_opts)
    delete.add_argument("service")

    history = command("history", "cli_admin:cmd_history", "a service's versions with their changes, newest first")
    history.add_argument("service")
    history.add_argument("--limit", type=int, default=20, help="versions per page (default 20)")
    history.add_argument("--cursor", help="continue after a previous page")

    diff = command("diff", "cli_admin:cmd_diff", "key-level differences between two versions or instants")
    diff.add_argument("service")
    diff.add_argument("a", metavar="A", help="version or RFC 3339 instant")
    diff.add_argument("b", metavar="B", help="version or RFC 3339 instant")

    rollback = command("rollback", "cli_admin:cmd_rollback",
                       "make an earlier version current again (a new rolled_back event)", write_opts)
    rollback.add_argument("service")
    rollback.add_argument("--to", metavar="N|T",
                          help="version N or RFC 3339 instant T (default: the version before the current one)")

    watch = command("watch", "cli_watch:cmd_watch", "print a service's changes as they happen")
    watch.add_argument("service")

    snapshot = command("snapshot", "cli_admin:cmd_snapshot", "every service's config as of one instant")
    snapshot.add_argument("--at", default="now", metavar="T", help="RFC 3339 instant (default now)")

    command("services", "cli_admin:cmd_services", "every service with its current version")

    apply_p = command("apply", "cli_safe:cmd_apply",
                      "apply a YAML/JSON file of changes to several services as one atomic change set",
                      write_opts)
    apply_p.add_argument("file", metavar="FILE|-", help="{reason: ..., changes: [{service, op, ...}]}")

    blame_p = command("blame", "cli_safe:cmd_blame",
                      "who set each key of a service's config: version, when, actor, reason")
    blame_p.add_argument("service")
    blame_p.add_argument("--at", metavar="T", help="as of an RFC 3339 instant")

    cli_fleet_parser.add_commands(command, sub)  # instances, rollout, schedule

    # --- audit: straight from the stream ----------------------------------------------------
    replay = command("replay", "cli_audit:cmd_replay",
                     "replay a service's events from the stream up to an instant")
    replay.add_argument("service")
    replay.add_argument("--until", metavar="T", default="now", help="RFC 3339 instant (default now)")

    verify = command("verify", "cli_audit:cmd_verify",
                     "verify hash chains and version continuity on the stream (exit 5 if broken)")
    verify.add_argument("service", nargs="?", help="one service (default: every service)")

    settings_p = sub.add_parser("settings", help="where each setting's value comes from",
                                description="where each setting's value comes from")
    settings_sub = settings_p.add_subparsers(dest="settings_command", required=True, metavar="COMMAND",
                                             parser_class=_Parser)
    explain = command("explain", "cli_settings:cmd_settings_explain",
                      "each setting's value and the default, file or variable that set it", into=settings_sub)
    explain.add_argument("key", nargs="?", metavar="KEY", help="a dotted key (api.port) or a variable (API_PORT)")
    explain.add_argument("--process", choices=("api", "cli", "client", "projector", "stack"),
                         help="one process's settings and service file (default: every process)")
    completion = command("completion", "cli:cmd_completion", "print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    return parser


def cmd_completion(ctx: Any, args: argparse.Namespace) -> int:
    ctx.out.write(completion_script(args.shell, build_parser()))
    return ExitCode.OK


# --- entry point ---------------------------------------------------------------------------


def _resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """Flags, then variables, then the running ``up`` (``<data>/endpoints.json``), then defaults."""
    from .cli_endpoints import find_endpoints

    running = None
    hub_url = environ.get("CONFIG_LEDGER_URL") or environ.get("CENTRAL_HUB_URL")  # the reference doc's name
    if not (getattr(args, "url", None) or hub_url) or not (
            getattr(args, "nats_url", None) or environ.get("NATS_URL")):
        running = find_endpoints(environ)
    if getattr(args, "nats_url", None):
        nats_url, nats_source = args.nats_url, "--nats-url"
    elif environ.get("NATS_URL"):
        nats_url, nats_source = environ["NATS_URL"], "NATS_URL"
    elif running is not None:
        nats_url, nats_source = running.nats_url, running.path
    else:
        nats_url, nats_source = DEFAULT_NATS_URL, "the default; no running `config-ledger up` found"
    api_url = getattr(args, "url", None) or hub_url or (
        running.api_url if running is not None else DEFAULT_API_URL)
    if running is not None and not getattr(args, "database_url", None) and not environ.get("DATABASE_URL") \
            and args.handler == "cli_servers:cmd_projector":
        args.database_url = running.database_url
    return {"api_url": api_url, "nats_url": nats_url, "nats_source": nats_source,
            "token": getattr(args, "token", None) or environ.get("CONFIG_LEDGER_TOKEN") or None}


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run one command; return its exit code (``ledger.exit_codes``)."""
    import contextlib

    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    out = None
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed on one line
        return int(exc.code or 0) if not isinstance(exc.code, str) else ExitCode.USAGE
    except BrokenPipeError:  # `config-ledger --help | head -1`
        _silence_stdout(stdout)
        return ExitCode.OK
    from .cli_context import CliContext
    from .cli_render import Output

    columns = environ.get("COLUMNS", "")
    out = Output(stdout, stderr, json_mode=getattr(args, "json", False),
                 color=False if environ.get("NO_COLOR") else None,
                 width=int(columns) if columns.isdigit() else None,
                 fmt=getattr(args, "output", None), headers=not getattr(args, "no_headers", False))
    try:
        ctx = CliContext(environ=environ, out=out, stdin=stdin or sys.stdin.buffer, **_resolve(args, environ))
        module, _, function = args.handler.partition(":")
        result = getattr(import_module(f"ops.{module}"), function)(ctx, args)
        if hasattr(result, "__await__"):
            result = _run_without_loop(result) if module in _LOOPLESS else _run_in_loop(result)
        return int(result)
    except LedgerError as exc:
        out.error(exc.message)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `config-ledger history x | head`
        _silence_stdout(stdout)
        return ExitCode.OK


# Commands whose only I/O is ``AdminApi.request`` (blocking http.client under an async
# interface): their coroutine never suspends, so it is driven without importing asyncio (which
# alone costs more than the start-up budget). ``watch`` (cli_watch) streams with aiohttp: it needs the loop.
_LOOPLESS = frozenset({"cli_admin", "cli_edit"})


def _run_without_loop(coro: Any) -> Any:
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a loopless command awaited something that needs an event loop")


def _run_in_loop(coro: Any) -> Any:
    from ledger.event_loop import run  # asyncio only for the commands that need it

    return run(coro)


def _silence_stdout(stdout: IO[str]) -> None:
    """After EPIPE, point fd 1 at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
