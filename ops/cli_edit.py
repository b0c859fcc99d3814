"""``config-ledger edit SERVICE``: the current document in ``$EDITOR``, written back with If-Match.

Like ``kubectl edit``: the document is fetched with its version, opened as YAML in
``$VISUAL``/``$EDITOR`` (default ``vi``), and sent back as a replace only if the service is
still at that version. Saved unchanged (or emptied) -> nothing is written. Someone else's change
in between -> refused with exit 4 and the key diff of what they changed, the edit kept in a file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ledger.errors import UsageError, VersionConflict

from .cli_admin import _describe_diff, _show_write, _write_options, fetch_config
from .cli_args import parse_object
from .cli_context import CliContext
from .cli_exit import ExitCode

__all__ = ["cmd_edit"]


def _edit(ctx: CliContext, text: str, service: str) -> tuple[str, Path]:
    editor = ctx.environ.get("VISUAL") or ctx.environ.get("EDITOR") or "vi"
    fd, name = tempfile.mkstemp(prefix=f"{service}-", suffix=".yaml")
    path = Path(name)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    try:
        done = subprocess.run([*shlex.split(editor), str(path)], env=dict(ctx.environ), check=False)
    except OSError as exc:
        raise UsageError(f"cannot run the editor {editor!r} ({exc.strerror}); set EDITOR") from None
    if done.returncode != 0:
        raise UsageError(f"the editor {editor!r} exited with {done.returncode}; nothing written")
    return path.read_text(), path


async def cmd_edit(ctx: CliContext, args: argparse.Namespace) -> int:
    import yaml

    resp = await fetch_config(ctx, args.service)
    body = resp.body if isinstance(resp.body, Mapping) else {}
    version, document = int(body["version"]), body["config"]
    header = f"# {args.service} at version {version}. Save and quit to write it back; empty it to cancel.\n"
    original = yaml.safe_dump(document, sort_keys=True, allow_unicode=True)
    edited, path = _edit(ctx, header + original, args.service)
    if not edited.strip() or edited.split("\n", 1)[-1] == original and edited.startswith(header):
        path.unlink(missing_ok=True)
        ctx.out.note(f"{args.service}: no changes; nothing written")
        return ExitCode.OK
    new = parse_object(edited, what=str(path), fmt="yaml")
    headers, params = _write_options(args)
    headers["If-Match"] = f'"{version}"'
    try:
        async with ctx.api() as api:
            written = await api.request("PUT", api.path("config", args.service), body=new,
                                        headers=headers, params=params)
    except VersionConflict:
        async with ctx.api() as api:
            changed = await api.request("GET", api.path("config", args.service, "diff"),
                                        params={"from": str(version)})
        theirs = _describe_diff(changed.body) or "(see config-ledger history)"
        raise _conflict(args.service, version, path, theirs) from None
    path.unlink(missing_ok=True)
    return _show_write(ctx, args.service, written, "edited")


def _conflict(service: str, version: int, path: Path, theirs: str) -> VersionConflict:
    from .cli_http import ApiConflict

    return ApiConflict(
        f"{service} changed since version {version} while you edited ({theirs}); your edit is kept in "
        f"{path}: re-run config-ledger edit {service}, or config-ledger set {service} {path} --format yaml"
    )
