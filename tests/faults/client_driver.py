"""Client-under-test driver: runs one ``ConfigClient`` and prints what it sees as JSON lines.

    python tests/faults/client_driver.py --service billing --nats-url nats://127.0.0.1:4222 \
        [--hub-url http://127.0.0.1:7000] [--lkg path.json] [--defaults '{"a": 1}'] [--tick 0.25]

stdout, one JSON object per line (``t`` is ``time.monotonic()``, comparable across processes):
- ``{"event": "ready", "version", "source", "config", "t"}`` after ``init_async()``;
- ``{"event": "update", "config", "version_now", "source", "t"}`` for every ``on_config_update``
  (callbacks are queued: ``version_now`` is the client's version when it ran, maybe newer);
- ``{"event": "tick", "version", "marker", "source", "t"}`` every ``--tick`` seconds: version and
  the config's ``w`` marker read together (liveness; 0: off);
- ``{"event": "error", "error", "t"}`` if ``init_async`` raised.
Runs until SIGTERM/SIGINT, then shuts the client down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from client import ConfigClient  # noqa: E402


def emit(**fields: Any) -> None:
    fields.setdefault("t", time.monotonic())
    sys.stdout.write(json.dumps(fields, default=str) + "\n")
    sys.stdout.flush()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", required=True)
    parser.add_argument("--nats-url", default="")
    parser.add_argument("--hub-url", default="http://127.0.0.1:9")  # nothing listens on port 9
    parser.add_argument("--lkg", default=None)
    parser.add_argument("--defaults", default=None)
    parser.add_argument("--tick", type=float, default=0.25)
    parser.add_argument("--no-hot", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    client = ConfigClient(
        args.service,
        central_hub_url=args.hub_url,
        enable_nats_updates=not args.no_hot,
        safe_defaults=json.loads(args.defaults) if args.defaults else None,
        nats_url=args.nats_url,
        lkg_path=args.lkg if args.lkg else False,
        environ={},
        http_timeout=1.0,
    )

    def state(**extra: Any) -> dict[str, Any]:
        return {"version": client.version, "source": getattr(client.source, "value", str(client.source)),
                **extra}

    def on_update(config: Any) -> None:
        # Callbacks are queued: client.version may already be past this config's version, so
        # the test maps the config (its marker) back to the version; version_now is informative.
        emit(event="update", config=config, version_now=client.version,
             source=getattr(client.source, "value", str(client.source)))

    client.on_config_update(on_update)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await client.init_async()
    except Exception as exc:  # noqa: BLE001 - reported to the test, which decides
        emit(event="error", error=f"{type(exc).__name__}: {exc}")
    else:
        config: Any
        try:
            config = await client.get_config()
        except Exception as exc:  # noqa: BLE001
            config = {"__error__": f"{type(exc).__name__}: {exc}"}
        emit(event="ready", config=config, **state())
    try:
        while not stop.is_set():
            if args.tick > 0:
                emit(event="tick", marker=client.get_value("w"), **state())
            try:
                await asyncio.wait_for(stop.wait(), args.tick if args.tick > 0 else 3600)
            except TimeoutError:
                pass
    finally:
        await client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
