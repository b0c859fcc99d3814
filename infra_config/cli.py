"""``python -m infra_config show | get KEY | explain KEY`` — inspect the effective config.

Options (before or after the command): ``--service NAME`` (default ``central-hub``),
``--environment ENV`` (default ``development``), ``--dir DIR`` (default ``$INFRA_CONFIG_DIR``,
else ``./config``), ``--json`` for JSON instead of YAML. Secrets are always shown as
``***``. Any user error — bad arguments, a broken file, an unknown key — is one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TextIO

import yaml

from .errors import InfraConfigError
from .manager import InfrastructureConfigManager

__all__ = ["main"]

PROG = "infra_config"
DEFAULT_SERVICE = "central-hub"
DEFAULT_ENVIRONMENT = "development"


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the usage block; we promise a single line.
        raise _ArgumentError(message)


def _add_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--service",
        metavar="NAME",
        default=default(DEFAULT_SERVICE),
        help=f"service name (default: {DEFAULT_SERVICE})",
    )
    parser.add_argument(
        "--environment",
        metavar="ENV",
        default=default(DEFAULT_ENVIRONMENT),
        help=f"environment name (default: {DEFAULT_ENVIRONMENT})",
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        default=default(None),
        help="config directory (default: $INFRA_CONFIG_DIR, else ./config)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print JSON instead of YAML"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Show the effective infrastructure configuration.")
    _add_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, takes_key in (
        ("show", "print the whole configuration", False),
        ("get", "print the value at KEY (a dotted path)", True),
        ("explain", "print which file/line or variable set KEY and what it overrode", True),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if takes_key:
            sub.add_argument("key", metavar="KEY")
        _add_options(sub, defaults=False)  # SUPPRESS: do not clobber options given earlier
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the CLI; return the exit code. The composition root: the only os.environ read."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        args = build_parser().parse_args(argv)
        manager = InfrastructureConfigManager(
            service_name=args.service,
            environment=args.environment,
            config_dir=args.dir,
            environ=os.environ if environ is None else environ,
        )
        asyncio.run(manager.load_config())
        text = _run(manager, args)
    except (_ArgumentError, InfraConfigError) as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG}: error: {message}", file=err)
        return 2
    out.write(text if text.endswith("\n") else text + "\n")
    return 0


def _run(manager: InfrastructureConfigManager, args: argparse.Namespace) -> str:
    if args.command == "show":
        return _format(manager.redacted(), as_json=args.json)
    explanation = manager.explain(args.key)  # raises KeyNotFoundError; value is redacted
    if args.command == "get":
        return _format(explanation.value, as_json=args.json)
    if args.json:
        return json.dumps(
            {
                "key": explanation.key,
                "value": explanation.value,
                "source": _source_dict(explanation.source),
                "overridden": [
                    {"source": _source_dict(o.source), "value": o.value}
                    for o in explanation.overridden
                ],
                "merged_from": [_source_dict(s) for s in explanation.merged_from],
            },
            indent=2,
            default=str,
        )
    return str(explanation)


def _source_dict(source: Any) -> dict[str, Any]:
    return {
        "layer": source.layer,
        "priority": source.priority,
        "file": source.file,
        "line": source.line,
        "variable": source.variable,
    }


def _format(value: Any, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(value, indent=2, default=str, ensure_ascii=False)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list):
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return json.dumps(value, default=str)
