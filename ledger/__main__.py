"""``python -m ledger streams apply [--dry-run] [--file streams.yaml] [--replicas N]``.

The server comes from ``NATS_URL`` (default ``nats://127.0.0.1:4222``). Exit codes (``ledger.exit_codes``): 0 applied or
unchanged, 6 drift found with ``--dry-run``, 2 a user error (bad file, forbidden setting),
3 NATS unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from . import nats_io
from .errors import LedgerError, Unavailable, UsageError
from .exit_codes import ExitCode
from .settings import LedgerSettings
from .streams import apply_streams, load_streams_file

EXIT_OK, EXIT_DRIFT, EXIT_USAGE, EXIT_UNAVAILABLE = ExitCode.OK, ExitCode.DRIFT, ExitCode.USAGE, ExitCode.UNAVAILABLE


async def streams_apply(
    file: str, *, dry_run: bool = False, replicas: int | None = None, nats_url: str | None = None
) -> int:
    """Apply streams.yaml to the server; return the exit code (also used by `config-ledger`)."""
    spec = load_streams_file(file, replicas=replicas)
    url = nats_url or LedgerSettings.from_env(os.environ).nats_url
    nc = await nats_io.connect(url, name="config-ledger-streams")
    try:
        with nats_io.nats_errors("streams apply"):
            changes = await apply_streams(nc.jetstream(), spec, dry_run=dry_run, report=print)
    finally:
        await nc.close()
    return EXIT_DRIFT if dry_run and any(c.action != "unchanged" for c in changes) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    streams = sub.add_parser("streams", help="manage JetStream streams")
    streams_sub = streams.add_subparsers(dest="action", required=True)
    apply_p = streams_sub.add_parser("apply", help="create or update the streams in streams.yaml")
    apply_p.add_argument("--file", default="streams.yaml")
    apply_p.add_argument("--dry-run", action="store_true", help="print the drift, change nothing")
    apply_p.add_argument("--replicas", type=int, help="override num_replicas (3 in a cluster)")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(streams_apply(args.file, dry_run=args.dry_run, replicas=args.replicas))
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (UsageError, LedgerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
