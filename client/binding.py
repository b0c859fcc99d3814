"""Typed binding: the config as a pydantic model that is always the latest *valid* one.

``ConfigClient.bind(Model)`` returns a ``Bound[Model]``. The model becomes part of the client's
acceptance check: an update that fails validation is rejected as a whole (logged with its
version; no callback runs; the last-known-good file keeps the last good config), so
``bound.value``, ``client.get_config()`` and the callbacks never disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ledger.errors import InvalidConfig, NotFound

__all__ = ["Bound", "validate_model"]

log = logging.getLogger("client.binding")

M = TypeVar("M", bound=BaseModel)


def validate_model(model: type[M], config: dict[str, Any], *, version: int | None) -> M:
    """``model`` from ``config``; InvalidConfig naming the model, version and first error."""
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        shown = f"version {version}" if version is not None else "the config"
        raise InvalidConfig(
            "binding", f"{shown} does not validate as {model.__name__}: {first['msg']}", path=path
        ) from None


class Bound(Generic[M]):
    """A live, validated view of a client's config (see the module docstring)."""

    def __init__(self, model: type[M], service: str) -> None:
        self.model = model
        self.service = service
        self._value: M | None = None
        self._version: int | None = None
        self._callbacks: list[Callable[[M], Any]] = []

    def __repr__(self) -> str:
        return f"Bound[{self.model.__name__}]({self.service!r}, version={self._version})"

    @property
    def value(self) -> M:
        """The latest valid model. NotFound while the service has no config at all."""
        if self._value is None:
            raise NotFound(f"Config not found for service: {self.service}")
        return self._value

    @property
    def version(self) -> int | None:
        return self._version

    def on_update(self, callback: Callable[[M], Any]) -> Callable[[M], Any]:
        """Call ``callback(model)`` (sync or async) after each accepted update; usable as a decorator."""
        self._callbacks.append(callback)
        return callback

    def validate(self, config: dict[str, Any], version: int | None) -> M:
        return validate_model(self.model, config, version=version)

    def _set(self, value: M | None, version: int | None) -> list[tuple[Callable[[M], Any], Any]]:
        """Take ``value``; return the callback calls to deliver it (none when there is no value)."""
        self._value, self._version = value, version
        if value is None:
            return []
        return [(callback, value) for callback in self._callbacks]
