"""Find and read the configuration files of one service and environment.

The I/O edge of loading. In ``config_dir``, lowest priority first:

=====================================  ========  =================
file                                   priority  layer name
=====================================  ========  =================
``default.{yaml,yml,json}``            10        ``default``
``infrastructure.yaml``                10        ``infrastructure``
``<service_name>.{yaml,yml,json}``     40        ``service``
``<environment>.{yaml,yml,json}``      50        ``environment``
``INFRA__*`` environment variables     100       ``env`` (:mod:`.envvars`)
=====================================  ========  =================

Every file is optional. ``infrastructure.yaml`` is applied after ``default.*`` and wins
where both set a key. Two files for the same layer (``default.yaml`` and ``default.json``)
are an error rather than a silent choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import ConfigFileError
from .interpolate import interpolate
from .parse import parse_document
from .source import Layer, Source

__all__ = [
    "DEFAULT_PRIORITY",
    "ENVIRONMENT_PRIORITY",
    "EXTENSIONS",
    "SERVICE_PRIORITY",
    "Fingerprint",
    "candidate_files",
    "fingerprint",
    "load_file",
    "read_file_layers",
]

DEFAULT_PRIORITY = 10
SERVICE_PRIORITY = 40
ENVIRONMENT_PRIORITY = 50
EXTENSIONS = (".yaml", ".yml", ".json")

#: Per watched path: ``(mtime_ns, size, inode)``, or ``None`` when the file is absent.
Fingerprint = tuple[tuple[int, int, int] | None, ...]


def candidate_files(
    config_dir: Path, service_name: str, environment: str
) -> list[tuple[str, int, tuple[Path, ...]]]:
    """``(layer name, priority, possible paths)`` for each file layer, lowest priority first."""

    def each(stem: str) -> tuple[Path, ...]:
        return tuple(config_dir / f"{stem}{ext}" for ext in EXTENSIONS)

    return [
        ("default", DEFAULT_PRIORITY, each("default")),
        ("infrastructure", DEFAULT_PRIORITY, (config_dir / "infrastructure.yaml",)),
        ("service", SERVICE_PRIORITY, each(service_name)),
        ("environment", ENVIRONMENT_PRIORITY, each(environment)),
    ]


def read_file_layers(
    config_dir: Path, service_name: str, environment: str, environ: Mapping[str, str]
) -> list[Layer]:
    """Read, parse and interpolate every file that exists, lowest priority first."""
    if not config_dir.is_dir():
        raise ConfigFileError(
            str(config_dir),
            "configuration directory not found (pass config_dir or set INFRA_CONFIG_DIR)",
        )
    layers = []
    for name, priority, paths in candidate_files(config_dir, service_name, environment):
        present = [path for path in paths if path.is_file()]
        if len(present) > 1:
            raise ConfigFileError(
                str(present[1]),
                f"ambiguous: {present[0].name} exists too; keep one file per layer",
            )
        if present:
            layers.append(load_file(present[0], name, priority, environ))
    return layers


def load_file(path: Path, layer: str, priority: int, environ: Mapping[str, str]) -> Layer:
    filename = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(filename, f"not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigFileError(filename, f"cannot read: {exc.strerror or exc}") from None
    data, lines = parse_document(text, filename)
    data, interpolated = interpolate(data, environ, filename=filename, lines=lines)
    return Layer(
        name=layer,
        priority=priority,
        data=data,
        origin=Source(layer, priority, file=filename),
        origins={
            path_: Source(layer, priority, file=filename, line=line)
            for path_, line in lines.items()
        },
        interpolated=interpolated,
    )


def fingerprint(paths: Iterable[Path]) -> Fingerprint:
    """Cheap change detector for :mod:`.watch`: stat each path, read nothing."""
    out: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)
