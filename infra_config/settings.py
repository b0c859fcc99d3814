"""A process's own settings on the layered manager: a table of ``Setting`` rows, one name each.

::

    PORT = Setting("api.port", "API_PORT", 7000, "port to listen on")
    config = settings_config([PORT], environ=os.environ, service_name="api")
    config.get_all()["api"]["port"]      # 7000, or $API_PORT, or a file's api.port ...
    print(config.explain("api.port"))    # which default, file:line or variable won

Layers, lowest priority first:

=====================================  ========  ====================================================
layer                                  priority  what
=====================================  ========  ====================================================
built-in defaults                      0         ``Setting.default`` (settings without one are absent)
files in ``$INFRA_CONFIG_DIR``         10–50     ``default.yaml`` < ``<service>.yaml`` < ``<env>.yaml``
the table's plain variables            90        ``API_PORT=7001`` (deprecated aliases below them)
``INFRA__*`` variables                 100       ``INFRA__API__PORT=7001``
explicit values                        200       command-line flags, constructor arguments, tests
=====================================  ========  ====================================================

Files are read only when ``$INFRA_CONFIG_DIR`` is set (then the folder must exist): a process
never picks up a ``./config`` folder by accident. Pure but for that folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .manager import CONFIG_DIR_VARIABLE, InfrastructureConfigManager
from .source import KeyPath, Layer, Source

__all__ = [
    "DEFAULTS_PRIORITY",
    "ENVIRONMENT_VARIABLE",
    "EXPLICIT_PRIORITY",
    "PLAIN_ENV_PRIORITY",
    "Setting",
    "defaults_layer",
    "explicit_layer",
    "plain_env_layer",
    "settings_config",
]

DEFAULTS_PRIORITY = 0
PLAIN_ENV_PRIORITY = 90
EXPLICIT_PRIORITY = 200
#: Names the environment file layer (``<environment>.yaml``); default ``development``.
ENVIRONMENT_VARIABLE = "CONFIG_LEDGER_ENVIRONMENT"


@dataclass(frozen=True)
class Setting:
    """One setting: its dotted ``key`` in the layered config, its environment variable, its
    default (None: no default) and what it means. ``deprecated`` variables are still read,
    below ``env``, so that an older name keeps working; ``explain`` shows which one was used."""

    key: str
    env: str
    default: Any = None
    help: str = ""
    deprecated: tuple[str, ...] = ()

    @property
    def path(self) -> KeyPath:
        return tuple(self.key.split("."))


def _nested(values: Iterable[tuple[KeyPath, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for path, value in values:
        level = data
        for part in path[:-1]:
            level = level.setdefault(str(part), {})
        level[str(path[-1])] = value
    return data


def defaults_layer(settings: Iterable[Setting]) -> Layer:
    """Priority 0: every setting that has a default."""
    chosen = {s.path: s.default for s in settings if s.default is not None}
    return Layer("defaults", DEFAULTS_PRIORITY, _nested(chosen.items()), Source("defaults", DEFAULTS_PRIORITY))


def plain_env_layer(settings: Iterable[Setting], environ: Mapping[str, str]) -> Layer:
    """Priority 90: ``API_PORT=7001`` for the settings of the table (empty values are unset)."""
    values: dict[KeyPath, Any] = {}
    origins: dict[KeyPath, Source] = {}
    for s in settings:
        for name in (s.env, *s.deprecated):
            if environ.get(name):
                values[s.path] = environ[name]
                origins[s.path] = Source("env", PLAIN_ENV_PRIORITY, variable=name)
                break
    return Layer(
        "env", PLAIN_ENV_PRIORITY, _nested(values.items()), Source("env", PLAIN_ENV_PRIORITY), origins
    )


def explicit_layer(values: Mapping[str, Any], *, name: str = "explicit") -> Layer:
    """Priority 200: values given in code or on the command line (dotted keys; None values count)."""
    paths = {tuple(key.split(".")): value for key, value in values.items()}
    return Layer(name, EXPLICIT_PRIORITY, _nested(paths.items()), Source(name, EXPLICIT_PRIORITY))


def settings_config(
    settings: Sequence[Setting],
    *,
    environ: Mapping[str, str] | None = None,
    service_name: str,
    layers: Sequence[Layer] = (),
) -> InfrastructureConfigManager:
    """A loaded manager holding ``settings`` from every layer above (plus ``layers``)."""
    env = os.environ if environ is None else environ
    config_dir = env.get(CONFIG_DIR_VARIABLE)
    manager = InfrastructureConfigManager(
        service_name=service_name,
        environment=env.get(ENVIRONMENT_VARIABLE) or "development",
        config_dir=config_dir,
        environ=env,
        layers=[defaults_layer(settings), plain_env_layer(settings, env), *layers],
        read_files=config_dir is not None,
    )
    manager.load_config_sync()
    return manager
