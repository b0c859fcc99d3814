"""``python -m api``: serve the HTTP API (settings from the environment, see ``api.settings``).

Exit codes (``ledger.exit_codes``): 0 after a graceful shutdown (SIGTERM/SIGINT), 2 for a configuration error,
3 when NATS is unreachable at startup.

``API_WORKERS=N`` (N > 1) runs N such processes on one port (SO_REUSEPORT: the kernel spreads
connections over them); each follows the stream itself, so read-your-writes holds on each, and a
reader presenting a version it has seen (ETag, ``min_version``) is served it by any of them. This
process then only supervises: it forwards SIGTERM/SIGINT and exits with the first failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

from aiohttp import web

from ledger import event_loop
from ledger.errors import Unavailable, UsageError
from ledger.exit_codes import ExitCode

from .app import create_app
from .conventions import configure_logging
from .server import GuardedSite, runner_kwargs
from .settings import ApiSettings

EXIT_OK, EXIT_USAGE, EXIT_UNAVAILABLE = ExitCode.OK, ExitCode.USAGE, ExitCode.UNAVAILABLE

log = logging.getLogger("api")


async def serve(
    settings: ApiSettings,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
    freeze_gc: bool = True,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully (open requests
    finish, SSE ends). Connection limits: ``api.server``."""
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=10.0, handle_signals=False, **runner_kwargs(settings))
    await runner.setup()
    # Everything built so far lives as long as the process: keep it out of the cyclic GC's
    # full collections, whose pauses otherwise show up in the request latency tail.
    if freeze_gc:
        gc.collect()
        gc.freeze()
    try:
        site = GuardedSite(runner, settings, reuse_address=True, reuse_port=settings.reuse_port or None,
                           backlog=1024)
        await site.start()
        log.info("Config Ledger API listening on http://%s:%d", settings.host, site.port)
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready(site.port)
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    configure_logging(environ.get("LOG_LEVEL", "INFO").upper(), "json" if environ.get("LOG_FORMAT") == "json" else "text")
    try:
        settings = ApiSettings.from_env(environ)
        if settings.workers > 1:
            return supervise(settings.workers, dict(environ))
        event_loop.run(serve(settings))
    except Unavailable as exc:
        log.error("cannot start: %s", exc)
        return EXIT_UNAVAILABLE
    except UsageError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def supervise(workers: int, env: dict[str, str]) -> int:
    """Run ``workers`` API processes on one port; forward signals; the first failure ends all."""
    child_env = {**env, "API_WORKERS": "1", "API_REUSE_PORT": "on"}
    procs = [subprocess.Popen([sys.executable, "-m", "api"], env=child_env) for _ in range(workers)]
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    log.info("supervising %d API workers on one port", workers)
    code: int = EXIT_OK
    while any(proc.poll() is None for proc in procs):
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                rc = proc.wait(0.2)
                if rc != 0 and not stopping:
                    code = rc
                    forward(signal.SIGTERM, None)
    return code


if __name__ == "__main__":
    sys.exit(main())
