"""The one error hierarchy of :mod:`infra_config`.

Every error raised on purpose by this package derives from :class:`InfraConfigError`.
Messages name *where* (file and line, or environment variable) and *which key*, and never
contain a secret value.

::

    InfraConfigError
    ├── ConfigUsageError (ValueError)        the caller's fault: bad argument, unknown key
    │   ├── KeyNotFoundError (LookupError)
    │   └── ConfigNotLoadedError
    ├── ConfigFileError                      unreadable or malformed file (file:line)
    ├── ConfigValidationError (ValueError)   a value of the wrong type (source, key path)
    └── MissingVariableError (LookupError)   ``${VAR}`` without a value or default
"""

from __future__ import annotations

from .source import Source

__all__ = [
    "ConfigFileError",
    "ConfigNotLoadedError",
    "ConfigUsageError",
    "ConfigValidationError",
    "InfraConfigError",
    "KeyNotFoundError",
    "MissingVariableError",
]


class InfraConfigError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigUsageError(InfraConfigError, ValueError):
    """The caller asked for something invalid (bad name, malformed key...)."""


class KeyNotFoundError(ConfigUsageError, LookupError):
    """The requested key path does not exist in the loaded configuration."""

    def __init__(self, key: str, detail: str = "") -> None:
        self.key = key
        super().__init__(f"key not found: {key}" + (f" ({detail})" if detail else ""))


class ConfigNotLoadedError(ConfigUsageError):
    """A synchronous accessor was used before ``await load_config()``."""


class ConfigFileError(InfraConfigError):
    """A configuration file (or the directory) cannot be read or parsed.

    ``str()`` reads ``path:line: reason``; the parser's own traceback is never shown.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class ConfigValidationError(InfraConfigError, ValueError):
    """A value has the wrong type or shape.

    ``source`` is where the offending value was set (a file and line, or an environment
    variable); ``key`` is its dotted path. ``problems`` holds every problem found, as
    ``(source, key, reason)`` triples; the attributes describe the first one.
    """

    def __init__(self, problems: list[tuple[Source | None, str, str]]) -> None:
        if not problems:
            raise ValueError("ConfigValidationError needs at least one problem")
        self.problems = tuple(problems)
        self.source, self.key, self.reason = problems[0]
        super().__init__("; ".join(_describe(s, k, r) for s, k, r in problems))

    @property
    def file(self) -> str | None:
        return self.source.file if self.source is not None else None

    @property
    def line(self) -> int | None:
        return self.source.line if self.source is not None else None

    @property
    def variable(self) -> str | None:
        return self.source.variable if self.source is not None else None


class MissingVariableError(InfraConfigError, LookupError):
    """A ``${VAR}`` placeholder names a variable that is not set and has no default."""

    def __init__(self, variable: str, file: str, key: str, line: int | None = None) -> None:
        self.variable = variable
        self.file = file
        self.key = key
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(
            f"{where}: {key}: environment variable {variable} is not set "
            f"(set it, or write ${{{variable}:-default}})"
        )


def _describe(source: Source | None, key: str, reason: str) -> str:
    prefix = f"{source.location}: " if source is not None else ""
    return f"{prefix}{key or '<root>'}: {reason}"
