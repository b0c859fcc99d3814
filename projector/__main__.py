"""``python -m projector run | rebuild | status [--json] | migrate``

Settings come from the environment: DATABASE_URL (required), NATS_URL, LEDGER_STREAM,
LEDGER_SUBJECT_PREFIX, PROJECTOR_BATCH_SIZE (500), PROJECTOR_BATCH_DELAY_MS (20),
PROJECTOR_HEARTBEAT_MS (1000), PROJECTOR_LOCK_POLL_MS (200), PROJECTOR_RETRY_MAX_MS (1500).

  run       apply the stream to PostgreSQL until SIGINT/SIGTERM; a second instance waits as a
            hot standby. NATS/PostgreSQL outages are retried (backoff), never fatal.
  rebuild   replay the whole stream into fresh tables and swap them in (takes the leader lock:
            a running projector steps down meanwhile and resumes afterwards)
  status    the projector's state, checkpoint and lag (--json for machines)
  migrate   apply pending SQL migrations and exit (run and rebuild also do this)

Exit codes (the project's one table, ``ledger.exit_codes``):
  0    done (run: stopped by SIGINT/SIGTERM; status: running or standing by, heartbeat fresh)
  70   internal error (a bug; traceback on stderr)
  2    usage error: bad argument or setting, wrong database/credentials, edited migration
  3    unavailable: PostgreSQL or NATS unreachable (status, migrate, rebuild), ``status`` finds
       the projector stale (running, but no heartbeat for 10 s), or the leader
       lock was not handed over in time (rebuild)
  5    integrity (fail-stop): the stream and the projection disagree (run, rebuild; recorded in the status
       row), or `status` reports a recorded fail-stop
  130  rebuild interrupted (the live projection is untouched)
"""

from __future__ import annotations

# ruff: noqa: E402 - the signal handlers are installed before the other imports, on purpose
# First thing, before the heavy imports below: SIGTERM (and SIGINT) only record a request to stop,
# which every command honours once it can (`run` exits 0). Without this, a SIGTERM that arrives
# while the projector is still importing would kill it with the default action (-15).
import signal

_STOP_REQUESTED: list[int] = []


def _request_stop(signum: int, _frame: object) -> None:
    _STOP_REQUESTED.append(signum)


def _record_stop_signals() -> None:
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)


if __name__ == "__main__":  # not when a test imports main()
    _record_stop_signals()

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from ledger import event_loop
from ledger.errors import LedgerError, ProjectionDiverged, Unavailable, UsageError, WorldError
from ledger.exit_codes import EXIT_CODES_HELP, ExitCode

from . import db
from .errors import OPERATOR_HINT, DatabaseRefused
from .migrate import migrate
from .rebuild import rebuild
from .runner import Projector
from .settings import ProjectorSettings
from .status import ProjectorStatus, read_status

# The project's one exit-code table (ledger.exit_codes).
EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_FAIL_STOP, EXIT_INTERRUPTED = (
    ExitCode.OK, ExitCode.INTERNAL, ExitCode.USAGE, ExitCode.UNAVAILABLE, ExitCode.INTEGRITY, ExitCode.INTERRUPTED,
)


def _instance() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _error(message: str) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


# --- commands ---------------------------------------------------------------------------------


async def _run(settings: ProjectorSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if _STOP_REQUESTED:  # arrived before the loop's handlers replaced ours
        stop.set()
    await Projector(settings, instance=_instance()).run(stop)
    return EXIT_OK


async def _rebuild(settings: ProjectorSettings, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    with _progress(args.progress, sys.stderr) as on_progress:
        task = asyncio.create_task(
            rebuild(
                settings,
                instance=_instance(),
                on_progress=on_progress,
                lock_timeout=args.lock_timeout,
                accept_regression=args.accept_regression,
            )
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        if _STOP_REQUESTED:
            task.cancel()
        try:
            result = await task
        except asyncio.CancelledError:
            _error("rebuild interrupted; the live projection is unchanged")
            return EXIT_INTERRUPTED
    print(
        f"rebuilt {result.events} events of {result.services} services up to stream sequence "
        f"{result.last_seq} (checkpoint was {result.previous_seq}) in {result.seconds:.1f}s"
    )
    return EXIT_OK


async def _status(settings: ProjectorSettings, as_json: bool) -> int:
    conn = await db.connect(settings.database_url, application_name="projector status")
    try:
        st = await read_status(conn)
    finally:
        await db.close(conn)
    print(json.dumps(st.to_dict(), indent=2) if as_json else _describe(st))
    return EXIT_FAIL_STOP if st.failed else EXIT_UNAVAILABLE if st.stale else EXIT_OK


def _describe(st: ProjectorStatus) -> str:
    beat = "never" if st.heartbeat_age_seconds is None else f"{st.heartbeat_age_seconds:.1f}s ago"
    state = f"stale (says {st.state}, but no heartbeat for {beat[:-4]}; is the projector running?)" \
        if st.stale else st.state
    lines = [
        f"state:      {state}",
        f"instance:   {st.instance or '-'} (heartbeat {beat})",
        f"stream:     {st.stream or '-'}",
        f"applied:    {st.last_applied_seq} of {st.stream_last_seq} "
        f"(lag {st.lag_events} events, {st.lag_seconds:.1f}s)",
    ]
    if st.failed:
        lines.append(f"failed at:  stream sequence {st.failed_seq}")
        lines.append(f"reason:     {st.reason}")
    return "\n".join(lines)


async def _migrate(settings: ProjectorSettings) -> int:
    conn = await db.connect(settings.database_url, application_name="projector migrate")
    try:
        applied = await migrate(conn)
    finally:
        await db.close(conn)
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return EXIT_OK


# --- progress ---------------------------------------------------------------------------------


@contextmanager
def _progress(mode: str, out: TextIO) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on a terminal, plain lines otherwise (``mode``: auto/rich/plain/none)."""
    if mode == "auto":
        mode = "rich" if out.isatty() else "plain"
    if mode == "none":
        yield None
        return
    if mode == "rich":
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("rebuild"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=out),
        ) as bar:
            task = bar.add_task("rebuild", total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=max(total, 1))

            yield update
        return

    last = {"at": 0.0, "pct": -100.0}

    def plain(done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        now = time.monotonic()
        if done >= total or pct - last["pct"] >= 10 or now - last["at"] >= 2:
            print(f"rebuild: {done}/{total} events ({pct:.0f}%)", file=out, flush=True)
            last["at"], last["pct"] = now, pct

    yield plain


# --- entry point ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m projector",
        description="Project the Config Ledger stream into PostgreSQL.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="project the stream until SIGINT/SIGTERM (active or standby)")
    rb = sub.add_parser("rebuild", help="rebuild the projection from the whole stream")
    rb.add_argument("--lock-timeout", type=float, default=30.0, help="seconds to wait for the leader lock")
    rb.add_argument(
        "--accept-regression",
        action="store_true",
        help="rebuild even if the stream ends before the checkpoint (drops applied events)",
    )
    rb.add_argument("--progress", choices=("auto", "rich", "plain", "none"), default="auto")
    st = sub.add_parser("status", help="state, checkpoint and lag")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("migrate", help="apply pending migrations")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("nats").setLevel(logging.WARNING)
    try:
        settings = ProjectorSettings.from_env(os.environ)
        if _STOP_REQUESTED:  # stopped before it started: nothing to undo
            return EXIT_OK if args.command == "run" else EXIT_INTERRUPTED
        if args.command in ("status", "migrate"):  # short; a signal interrupts them as usual
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.command == "run":
            try:
                return event_loop.run(_run(settings))
            finally:  # closing the loop restored SIG_DFL: keep a late SIGTERM harmless
                _record_stop_signals()
        if args.command == "rebuild":
            return event_loop.run(_rebuild(settings, args))
        if args.command == "status":
            return event_loop.run(_status(settings, args.json))
        return event_loop.run(_migrate(settings))
    except ProjectionDiverged as exc:
        hint = "" if OPERATOR_HINT in exc.message else f" — {OPERATOR_HINT}"
        _error(f"fail-stop at stream sequence {exc.seq}: {exc.message}{hint}")
        return EXIT_FAIL_STOP
    except (UsageError, DatabaseRefused) as exc:
        _error(exc.message)
        return EXIT_USAGE
    except (Unavailable, WorldError) as exc:
        _error(exc.message)
        return EXIT_UNAVAILABLE
    except LedgerError as exc:
        _error(exc.message)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
