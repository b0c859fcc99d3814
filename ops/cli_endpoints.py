"""Where the running embedded stack is: ``up`` writes ``<data>/endpoints.json``, the CLI reads it.

So ``config-ledger verify`` after ``make run`` talks to the embedded NATS, not to
``127.0.0.1:4222``. The file names the ``up`` process; it is ignored once that process is gone.
Explicit settings always win: a flag, then the environment, then this file, then the defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["StackEndpoints", "write_endpoints", "remove_endpoints", "find_endpoints", "FILE_NAME"]

FILE_NAME = "endpoints.json"
DEFAULT_DATA_DIR = ".ledger-data"


@dataclass(frozen=True)
class StackEndpoints:
    api_url: str
    nats_url: str
    database_url: str
    pid: int
    path: str = ""


def write_endpoints(data_dir: Path, *, api_url: str, nats_url: str, database_url: str) -> Path:
    path = data_dir / FILE_NAME
    record = StackEndpoints(api_url, nats_url, database_url, os.getpid())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: v for k, v in asdict(record).items() if k != "path"}, indent=2) + "\n")
    tmp.chmod(0o600)  # the database URL may carry a password
    tmp.replace(path)
    return path


def remove_endpoints(data_dir: Path) -> None:
    path = data_dir / FILE_NAME
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_endpoints(environ: Mapping[str, str], cwd: Path | None = None) -> StackEndpoints | None:
    """The endpoints of a running ``up`` in ``$LEDGER_DATA_DIR`` (default ``./.ledger-data``)."""
    data_dir = Path(environ.get("LEDGER_DATA_DIR") or DEFAULT_DATA_DIR)
    if not data_dir.is_absolute():
        data_dir = (cwd or Path.cwd()) / data_dir
    path = data_dir / FILE_NAME
    try:
        raw = json.loads(path.read_text())
        found = StackEndpoints(str(raw["api_url"]), str(raw["nats_url"]), str(raw["database_url"]),
                               int(raw["pid"]), str(path))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if _alive(found.pid) else None
