"""The last-known-good file: the last config a service saw, for starting while the hub is down.

One JSON file per service: ``{"format": 1, "service", "version", "config", "updated_at",
"sha256"}`` where ``sha256`` covers the canonical JSON of the other fields. Written atomically
(temporary file in the same directory, fsync, rename, fsync of the directory), so a crash leaves
the old file or the new one, never half of one. A file that does not parse, whose checksum does
not match, or that belongs to another service is ignored with a warning: a bad cache must never
stop a service from starting on its safe defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.canonical import dumps, loads, sha256_of
from ledger.errors import LedgerError

from .snapshot import Snapshot, Source
from .worker import close_worker

__all__ = ["LastKnownGood", "LkgWriter", "FORMAT"]

log = logging.getLogger("client.lkg")

FORMAT = 1


class LastKnownGood:
    """Load and save one service's last-known-good config at ``path``."""

    def __init__(self, path: str | os.PathLike[str], service: str) -> None:
        self.path = Path(path)
        self.service = service

    def __repr__(self) -> str:
        return f"LastKnownGood({str(self.path)!r}, {self.service!r})"

    def load(self) -> Snapshot | None:
        """The saved snapshot (source ``lkg``), or None when absent or unusable (logged)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read last-known-good file %s: %s", self.path, exc.strerror)
            return None
        problem, snapshot = self._parse(data)
        if problem:
            log.warning("ignoring last-known-good file %s: %s", self.path, problem)
            return None
        return snapshot

    def _parse(self, data: bytes) -> tuple[str, Snapshot | None]:
        try:
            doc = loads(data)
        except ValueError:
            return "not valid JSON (corrupt)", None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            return f"not a format-{FORMAT} last-known-good document", None
        body = {k: v for k, v in doc.items() if k != "sha256"}
        if doc.get("sha256") != sha256_of(body):
            return "checksum does not match (corrupt or edited)", None
        if doc.get("service") != self.service:
            return f"it belongs to service {doc.get('service')!r}, not {self.service!r}", None
        version, config, updated = doc.get("version"), doc.get("config"), doc.get("updated_at")
        if not (version is None or (isinstance(version, int) and version >= 1)):
            return "version is not a positive integer", None
        if not (config is None or isinstance(config, dict)):
            return "config is not a JSON object", None
        try:
            updated_at = datetime.fromisoformat(updated) if isinstance(updated, str) else None
        except ValueError:
            return "updated_at is not an ISO 8601 time", None
        return "", Snapshot(version, config, Source.LKG, updated_at)

    def save(self, snapshot: Snapshot) -> None:
        """Atomically replace the file with ``snapshot``. Raises LedgerError when it cannot."""
        body: dict[str, Any] = {
            "format": FORMAT,
            "service": self.service,
            "version": snapshot.version,
            "config": snapshot.config,
            "updated_at": snapshot.updated_at.isoformat() if snapshot.updated_at else None,
        }
        body["sha256"] = sha256_of(body)
        data = dumps(body)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(self.path.parent)
        except OSError as exc:
            raise LedgerError(
                f"cannot write last-known-good file {self.path}: {exc.strerror or exc}"
            ) from None


class LkgWriter:
    """Saves the latest snapshot in the background, off the event loop, coalescing bursts.

    Two hundred updates in a row cost a handful of writes, and a slow disk never delays the
    stream or the callbacks. A failed write is logged; the next update tries again.
    """

    def __init__(self, lkg: LastKnownGood) -> None:
        self.lkg = lkg
        self._latest: Snapshot | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, snapshot: Snapshot) -> None:
        self._latest = snapshot
        self._idle.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="config-lkg-writer")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            snapshot, self._latest = self._latest, None
            if snapshot is not None:
                try:
                    await asyncio.to_thread(self.lkg.save, snapshot)
                except LedgerError as exc:
                    log.warning("%s", exc.message)
            if self._latest is None:
                self._idle.set()

    async def flush(self) -> None:
        """Wait until the latest submitted snapshot is on disk (or failed and was logged)."""
        if self._task is not None and not self._task.done():
            await self._idle.wait()

    async def close(self, timeout: float = 5.0) -> None:
        task = self._task
        await close_worker(task, self.flush, timeout)
        self._task = None


def _fsync_dir(path: Path) -> None:
    """Make the rename durable (directories cannot be opened for fsync everywhere)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
