"""``python -m api``: serve the HTTP API (settings from the environment, see ``api.settings``).

Exit codes (``ledger.exit_codes``): 0 after a graceful shutdown (SIGTERM/SIGINT), 2 for a configuration error,
3 when NATS is unreachable at startup.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web

from ledger.errors import Unavailable, UsageError
from ledger.exit_codes import ExitCode

from .app import create_app
from .conventions import configure_logging
from .settings import ApiSettings

EXIT_OK, EXIT_USAGE, EXIT_UNAVAILABLE = ExitCode.OK, ExitCode.USAGE, ExitCode.UNAVAILABLE

log = logging.getLogger("api")


async def serve(settings: ApiSettings, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully (open requests finish, SSE ends)."""
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10.0, handle_signals=False)
    await runner.setup()
    # Everything built so far lives as long as the process: keep it out of the cyclic GC's
    # full collections, whose pauses otherwise show up in the request latency tail.
    gc.collect()
    gc.freeze()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True, backlog=1024)
        await site.start()
        log.info("Config Ledger API listening on http://%s:%d", settings.host, settings.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = environ if environ is not None else os.environ
    configure_logging(env.get("LOG_LEVEL", "INFO").upper(), "json" if env.get("LOG_FORMAT") == "json" else "text")
    try:
        settings = ApiSettings.from_env(env)
        asyncio.run(serve(settings))
    except Unavailable as exc:
        log.error("cannot start: %s", exc)
        return EXIT_UNAVAILABLE
    except UsageError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        pass
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
