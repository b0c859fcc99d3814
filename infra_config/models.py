"""Typed pydantic models for the known sections; unknown keys are allowed everywhere.

Known sections: ``databases``, ``messaging``, ``cache``, ``health_check``, ``dependencies``
and ``alerts``. Validation coerces strings from ``${VAR}`` and environment variables
(``port: "5433"`` → ``5433``) and rejects wrong types; :func:`validate` turns pydantic's
errors into one :class:`ConfigValidationError` naming the source, key path and line.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigValidationError
from .redact import MASK, is_secret_key, is_secret_path
from .source import KeyPath, Source

__all__ = [
    "AlertRule",
    "CacheConfig",
    "DatabaseConfig",
    "DependencySpec",
    "Endpoint",
    "HealthCheck",
    "InfrastructureConfig",
    "MessagingConfig",
    "validate",
]


def _whole_if_integral(value: float) -> float:
    # Keep `timeout: 5` an int after validation, so a dump reads like the file.
    return int(value) if float(value).is_integer() else value


Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0), AfterValidator(_whole_if_integral)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for key, value in super().__repr_args__():
            yield key, (MASK if value is not None and is_secret_key(key) else value)


class HealthCheck(_Section):
    method: str | None = None
    endpoint: str | None = None
    timeout: Seconds | None = None
    interval: Seconds | None = None
    retries: Annotated[int, Field(ge=0)] | None = None


class Endpoint(_Section):
    """Fields shared by anything reachable over the network."""

    host: str | None = None
    port: Port | None = None
    type: str | None = None
    health_check: HealthCheck | None = None
    critical: bool = False
    primary: bool = False


class DatabaseConfig(Endpoint):
    database: str | None = None
    username: str | None = None
    password: str | None = None


class MessagingConfig(Endpoint):
    management_port: Port | None = None
    username: str | None = None
    password: str | None = None


class CacheConfig(Endpoint):
    db: Annotated[int, Field(ge=0)] | None = None
    password: str | None = None
    ttl: Seconds | None = None


class DependencySpec(_Section):
    requires: list[str] = []
    optional: list[str] = []


class AlertRule(_Section):
    severity: Literal["debug", "info", "warning", "error", "critical"] | None = None
    enabled: bool = True


class InfrastructureConfig(_Section):
    """The whole document. ``dependencies`` entries may be a spec or a plain list."""

    databases: dict[str, DatabaseConfig] = {}
    messaging: dict[str, MessagingConfig] = {}
    cache: CacheConfig | None = None
    health_check: HealthCheck | None = None
    dependencies: dict[str, DependencySpec | list[str]] = {}
    alerts: dict[str, AlertRule] | list[AlertRule] = {}


def validate(
    data: Mapping[str, Any],
    *,
    locate: Callable[[KeyPath], Source | None] = lambda _path: None,
    secret_paths: Collection[KeyPath] = (),
) -> dict[str, Any]:
    """Validate ``data``; return it with values coerced, keys in their original order.

    ``locate(path)`` names the source of a key path for error messages. The offending value
    is quoted in a message only when it is not a secret.
    """
    try:
        model = InfrastructureConfig.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc, data, locate, secret_paths) from None
    coerced = model.model_dump(mode="python", exclude_unset=True)
    result = _in_order_of(coerced, data)
    assert isinstance(result, dict)
    return result


def _translate(
    exc: ValidationError,
    data: Mapping[str, Any],
    locate: Callable[[KeyPath], Source | None],
    secret_paths: Collection[KeyPath],
) -> ConfigValidationError:
    errors = [(_data_path(data, e["loc"]), e) for e in exc.errors(include_url=False)]
    # A union reports one error per alternative; keep the most specific: drop errors at a
    # path that another error goes deeper into, and repeats of the same path.
    paths = {path for path, _ in errors}
    problems: list[tuple[Source | None, str, str]] = []
    seen: set[KeyPath] = set()
    for path, error in errors:
        deeper = any(len(p) > len(path) and p[: len(path)] == path for p in paths)
        if deeper or path in seen:
            continue
        seen.add(path)
        reason = str(error["msg"])
        if "input" in error and not is_secret_path(path, secret_paths):
            shown = repr(error["input"])
            if len(shown) <= 60 and not isinstance(error["input"], Mapping | list):
                reason += f" (got {shown})"
        key = ".".join(str(p) for p in path)
        problems.append((locate(path), key, reason))
    return ConfigValidationError(problems)


def _data_path(data: Any, loc: tuple[int | str, ...]) -> KeyPath:
    """Map a pydantic ``loc`` to a path in ``data``.

    Parts that do not exist at their level are skipped: they are labels pydantic adds for
    union branches (``'dict[str,AlertRule]'``, ``'constrained-int'``); no field is required,
    so a real key is never missing.
    """
    path: list[str | int] = []
    level = data
    for part in loc:
        if isinstance(level, Mapping) and part in level:
            level = level[part]
        elif isinstance(level, list) and isinstance(part, int) and 0 <= part < len(level):
            level = level[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _in_order_of(coerced: Any, original: Any) -> Any:
    if isinstance(coerced, dict) and isinstance(original, Mapping):
        ordered = {k: _in_order_of(coerced[k], original[k]) for k in original if k in coerced}
        ordered.update((k, v) for k, v in coerced.items() if k not in ordered)
        return ordered
    if isinstance(coerced, list) and isinstance(original, list) and len(coerced) == len(original):
        return [_in_order_of(c, o) for c, o in zip(coerced, original, strict=True)]
    return coerced
