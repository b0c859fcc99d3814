"""The CLI's own settings, and ``config-ledger settings explain [KEY]``: every process's settings
with the value each one has here and where it came from.

::

    $ config-ledger settings explain api.port --process api
    api.port = 7001
      set by      $API_PORT (environment variable, priority 90)
      overrides   <defaults> (built-in default, priority 0) = 7000

KEY is a dotted key (``api.port``) or a variable (``API_PORT``); without KEY, every setting is
listed. Layers: built-in defaults < ``$INFRA_CONFIG_DIR`` files < variables < ``INFRA__*`` <
command-line flags (see ``ledger.settings``). Secrets and URL passwords are shown as ``***``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from api.settings import ApiSettings
from client.settings import ClientSettings
from infra_config import KeyNotFoundError, Layer, is_secret_key
from infra_config.settings import Setting, explicit_layer
from ledger.errors import UsageError
from ledger.settings import HUB_TOKEN, HUB_URL, NATS_URL, SettingsModel, load_config
from projector.settings import ProjectorSettings

from .cli_context import CliContext
from .stack_settings import StackSettings

__all__ = ["PROCESSES", "CliSettings", "cmd_settings_explain", "flags_layer"]


class CliSettings(SettingsModel):
    """Where the admin and audit commands find the API and the stream."""

    SERVICE: ClassVar[str] = "cli"

    api_url: str = HUB_URL.default
    token: str | None = None
    nats_url: str = NATS_URL.default

    FIELDS: ClassVar[Mapping[str, Setting]] = {"api_url": HUB_URL, "token": HUB_TOKEN, "nats_url": NATS_URL}


#: Each process and the settings model its composition root builds.
PROCESSES: Mapping[str, type[SettingsModel]] = {
    "api": ApiSettings,
    "projector": ProjectorSettings,
    "stack": StackSettings,
    "client": ClientSettings,
    "cli": CliSettings,
}

_FLAGS = {"url": HUB_URL, "token": HUB_TOKEN, "nats_url": NATS_URL}


def flags_layer(args: argparse.Namespace) -> Layer:
    """The command-line flags (``--url``, ``--token``, ``--nats-url``) as the top layer."""
    given = {s.key: getattr(args, flag) for flag, s in _FLAGS.items() if getattr(args, flag, None)}
    return explicit_layer(given, name="flags")


def _selected(models: Iterable[type[SettingsModel]], key: str | None) -> list[Setting]:
    unique: dict[str, Setting] = {}
    for model in models:
        for setting in model.settings():
            unique.setdefault(setting.key, setting)
    settings = sorted(unique.values(), key=lambda s: s.key)
    if key is None:
        return settings
    chosen = [s for s in settings if key in (s.key, s.env, *s.deprecated)]
    if not chosen:
        known = ", ".join(s.env for s in settings)
        raise UsageError(f"unknown setting {key!r}; known: {known}")
    return chosen


_URL_PASSWORD = re.compile(r"://([^:/@]+):[^@/]*@")


def _shown(setting: Setting, value: Any) -> Any:
    if value is None:
        return None
    if is_secret_key(setting.path[-1]) or is_secret_key(setting.env):
        return "***"
    return _URL_PASSWORD.sub(r"://\1:***@", value) if isinstance(value, str) else value


def cmd_settings_explain(ctx: CliContext, args: argparse.Namespace) -> int:
    models = [PROCESSES[args.process]] if args.process else list(PROCESSES.values())
    settings = _selected(models, args.key)
    service = models[0].SERVICE if args.process else SettingsModel.SERVICE  # whose service file
    config = load_config(settings, ctx.environ, service_name=service)
    rows: list[dict[str, Any]] = []
    for setting in settings:
        try:
            found = config.explain(setting.key)
        except KeyNotFoundError:
            found = None
        rows.append({
            "key": setting.key,
            "variable": setting.env,
            "deprecated": list(setting.deprecated),
            "value": _shown(setting, found.value) if found else None,
            "source": str(found.source) if found else "not set",
            "where": found.source.location if found else "not set",
            "overrides": [str(o.source) for o in found.overridden] if found else [],
            "help": setting.help,
        })
    if getattr(args, "json", False):
        ctx.out.emit_json(rows)
    elif args.key and len(rows) == 1:
        row = rows[0]
        ctx.out.line(f"{row['key']} = {row['value']!r}  (${row['variable']}: {rows[0]['help']})")
        ctx.out.line(f"  set by      {row['source']}")
        for i, older in enumerate(row["overrides"]):
            ctx.out.line(("  overrides   " if i == 0 else "              ") + older)
    else:
        ctx.out.table(None, ["KEY", "VARIABLE", "VALUE", "SET BY"],
                      ([r["key"], r["variable"], r["value"], r["where"]] for r in rows),
                      wrap=("KEY", "VARIABLE", "VALUE", "SET BY"))
    return 0
