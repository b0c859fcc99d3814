"""Settings: every process's frozen model, built from the project's one layered mechanism.

Each process (api, projector, the embedded stack, the CLI, ``ConfigClient``) has one frozen
``SettingsModel`` built in its composition root::

    settings = ProjectorSettings.from_env(os.environ)                       # python -m projector
    settings = ProjectorSettings.from_env({"DATABASE_URL": url})            # a test: a dict
    settings = ProjectorSettings.from_env(env, layers=[explicit_layer({"projector.batch_size": 5})])

``from_env`` (written here, once) reads the process's ``Setting`` table through
``infra_config.settings_config``: built-in defaults < ``$INFRA_CONFIG_DIR`` files < plain
variables (``NATS_URL``) < ``INFRA__*`` < explicit layers; ``explain(KEY)`` says which one won
(``config-ledger settings explain``). A bad value raises ``UsageError`` naming the variable (or
the file and line) that set it.

The settings every process shares are named once, below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infra_config import InfraConfigError, InfrastructureConfigManager, KeyNotFoundError, Layer
from infra_config.settings import Setting, settings_config

from . import defaults
from .errors import UsageError
from .validate import Limits

__all__ = [
    "API_HOST",
    "API_PORT",
    "DATABASE_URL",
    "HUB_TOKEN",
    "HUB_URL",
    "LEDGER_STREAM",
    "LEDGER_SUBJECT_PREFIX",
    "NATS_URL",
    "LedgerSettings",
    "Setting",
    "SettingsModel",
    "load_config",
]

# --- the settings several processes share, each named once --------------------------------------

NATS_URL = Setting("nats.url", "NATS_URL", defaults.NATS_URL, "the NATS server (JetStream)")
LEDGER_STREAM = Setting("ledger.stream", "LEDGER_STREAM", "CONFIG_LEDGER", "the JetStream stream")
LEDGER_SUBJECT_PREFIX = Setting(
    "ledger.subject_prefix", "LEDGER_SUBJECT_PREFIX", "config.events", "events are <prefix>.<service>"
)
DATABASE_URL = Setting("database.url", "DATABASE_URL", None, "PostgreSQL holding the projection")
API_HOST = Setting("api.host", "API_HOST", defaults.API_HOST, "address the API listens on")
API_PORT = Setting("api.port", "API_PORT", defaults.API_PORT, "port the API listens on")
HUB_URL = Setting(
    "hub.url",
    "CONFIG_LEDGER_URL",
    defaults.HUB_URL,
    "the API, for ConfigClient and the admin commands",
    deprecated=("CENTRAL_HUB_URL",),  # the reference document's name
)
HUB_TOKEN = Setting("hub.token", "CONFIG_LEDGER_TOKEN", None, "bearer token for the API")


class SettingsModel(BaseModel):
    """A frozen settings model whose fields are read from a ``Setting`` table (``FIELDS``).

    ``NESTED`` names fields that are settings models themselves (built from the same layers).
    ``UNLESS_DEFAULT`` names fields read only when something other than the built-in default
    set them (else the field's own default: "not given" means "start one"/"off" there).
    """

    model_config = ConfigDict(frozen=True)

    SERVICE: ClassVar[str] = "config-ledger"
    FIELDS: ClassVar[Mapping[str, Setting]] = {}
    NESTED: ClassVar[Mapping[str, type[SettingsModel]]] = {}
    UNLESS_DEFAULT: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def settings(cls) -> Iterator[Setting]:
        """Every ``Setting`` this model (and its nested models) reads."""
        yield from cls.FIELDS.values()
        for nested in cls.NESTED.values():
            yield from nested.settings()

    @classmethod
    def config(cls, environ: Mapping[str, str] | None = None, *, layers: Sequence[Layer] = ()) -> InfrastructureConfigManager:
        """The loaded layers this model is built from (for ``explain``)."""
        return load_config(list(cls.settings()), environ, service_name=cls.SERVICE, layers=layers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, layers: Sequence[Layer] = ()) -> Self:
        """Build from ``environ`` (``os.environ`` when None) and ``layers``; UsageError names the culprit."""
        return cls.from_config(cls.config(environ, layers=layers))

    @classmethod
    def from_config(cls, config: InfrastructureConfigManager) -> Self:
        data = config.get_all()
        values: dict[str, Any] = {}
        for field, setting in cls.FIELDS.items():
            found, value = _lookup(data, setting)
            if found and not (field in cls.UNLESS_DEFAULT and _source(config, setting).layer == "defaults"):
                values[field] = value
        for field, nested in cls.NESTED.items():
            values[field] = nested.from_config(config)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise _settings_error(exc, cls.FIELDS, config) from None


def load_config(
    settings: Sequence[Setting],
    environ: Mapping[str, str] | None,
    *,
    service_name: str,
    layers: Sequence[Layer] = (),
) -> InfrastructureConfigManager:
    """``infra_config.settings_config``, a broken file or variable raised as UsageError."""
    try:
        return settings_config(settings, environ=environ, service_name=service_name, layers=layers)
    except InfraConfigError as exc:
        raise UsageError(" ".join(str(exc).split())) from None


def _lookup(data: Mapping[str, Any], setting: Setting) -> tuple[bool, Any]:
    level: Any = data
    for part in setting.path:
        if not isinstance(level, Mapping) or part not in level:
            return False, None
        level = level[part]
    return True, level


def _source(config: InfrastructureConfigManager, setting: Setting) -> Any:
    return config.explain(setting.key).source


def _settings_error(exc: ValidationError, fields: Mapping[str, Setting], config: InfrastructureConfigManager) -> UsageError:
    """One line naming the variable (or file:line) that set the bad value."""
    first = exc.errors()[0]
    if not first["loc"]:  # a check across fields: its message names the variables itself
        return UsageError(str(first["msg"]).removeprefix("Value error, "))
    field = str(first["loc"][0])
    setting = fields.get(field)
    if setting is None:
        return UsageError(f"{field}: {first['msg']}")
    try:
        source = _source(config, setting)
    except KeyNotFoundError:  # a required setting nobody set
        return UsageError(f"{setting.env}: {first['msg']}")
    where = source.variable or f"{setting.key} in {source.location}"
    return UsageError(f"{where}: {first['msg']}")


_MAX_DOCUMENT_BYTES = Setting("ledger.max_document_bytes", "LEDGER_MAX_DOCUMENT_BYTES", 256 * 1024, "document size limit")
_MAX_DEPTH = Setting("ledger.max_depth", "LEDGER_MAX_DEPTH", 32, "document nesting limit")
# (The key avoids the word "secret": infra_config masks the values of secret-named keys.)
_SECRETS_POLICY = Setting("ledger.reject_plaintext", "LEDGER_SECRETS_POLICY", True, "refuse plaintext secrets")
_REQUEST_TIMEOUT = Setting("ledger.request_timeout", "LEDGER_REQUEST_TIMEOUT", 5.0, "JetStream request timeout (s)")
_WRITE_DEADLINE = Setting(
    "ledger.write_deadline", "LEDGER_WRITE_DEADLINE", 10.0,
    "how long one append retries through a leader election or reconnect (same Nats-Msg-Id) (s)",
)
_SCHEMA_SUBJECT_PREFIX = Setting(
    "ledger.schema_subject_prefix", "LEDGER_SCHEMA_SUBJECT_PREFIX", "",
    "schema events are <prefix>.<service>: a sibling of the events' prefix (empty: config.schemas)",
)


class LedgerSettings(SettingsModel):
    """Where the ledger lives (NATS, stream, subjects) and the limits of a document."""

    SERVICE: ClassVar[str] = "ledger"

    nats_url: str = NATS_URL.default
    stream: str = LEDGER_STREAM.default
    subject_prefix: str = LEDGER_SUBJECT_PREFIX.default
    schema_subject_prefix: str = _SCHEMA_SUBJECT_PREFIX.default
    max_document_bytes: int = _MAX_DOCUMENT_BYTES.default
    max_depth: int = _MAX_DEPTH.default
    secrets_policy: bool = _SECRETS_POLICY.default
    connect_timeout: float = 2.0
    request_timeout: float = Field(default=_REQUEST_TIMEOUT.default, gt=0)
    # How long one append may keep retrying through a leader election or a reconnect (same
    # Nats-Msg-Id, same expected sequence) before it answers "unavailable, may be stored".
    write_deadline: float = Field(default=_WRITE_DEADLINE.default, gt=0, le=300)

    FIELDS: ClassVar[Mapping[str, Setting]] = {
        "nats_url": NATS_URL,
        "stream": LEDGER_STREAM,
        "subject_prefix": LEDGER_SUBJECT_PREFIX,
        "max_document_bytes": _MAX_DOCUMENT_BYTES,
        "max_depth": _MAX_DEPTH,
        "secrets_policy": _SECRETS_POLICY,
        "request_timeout": _REQUEST_TIMEOUT,
        "write_deadline": _WRITE_DEADLINE,
        "schema_subject_prefix": _SCHEMA_SUBJECT_PREFIX,
    }

    @model_validator(mode="after")
    def _families_are_siblings(self) -> Self:
        """Every family of a service's subjects (config events, schema, rollouts) must be one
        token under one parent: a write's CAS covers them all with ``<parent>.*.<service>``."""
        parent = self.family_parent
        if "." not in self.subject_prefix:
            raise ValueError(f"{LEDGER_SUBJECT_PREFIX.env}: {self.subject_prefix!r} needs a parent "
                             "(e.g. config.events)")
        if self.schema_prefix.rpartition(".")[0] != parent:
            raise ValueError(
                f"{_SCHEMA_SUBJECT_PREFIX.env}: {self.schema_prefix!r} must be a sibling of the events' "
                f"prefix {self.subject_prefix!r} (one token under {parent!r})"
            )
        return self

    @property
    def limits(self) -> Limits:
        return Limits(
            max_bytes=self.max_document_bytes,
            max_depth=self.max_depth,
            secrets_policy=self.secrets_policy,
        )

    def subject(self, service: str) -> str:
        return f"{self.subject_prefix}.{service}"

    @property
    def subject_wildcard(self) -> str:
        return f"{self.subject_prefix}.>"

    @property
    def family_parent(self) -> str:
        """``config`` for ``config.events``: the parent of every subject family."""
        return self.subject_prefix.rpartition(".")[0]

    def family_filter(self, service: str) -> str:
        """``config.*.<service>``: the service's config events, schema and rollouts together."""
        return f"{self.family_parent}.*.{service}"

    def service_of(self, subject: str) -> str:
        return subject[len(self.subject_prefix) + 1 :]

    @property
    def schema_prefix(self) -> str:
        """Subjects of schema events, ``config.schemas.<service>``: a sibling of the config
        events' prefix (never under it, where it would collide with a service's subject)."""
        if self.schema_subject_prefix:
            return self.schema_subject_prefix
        head, _, last = self.subject_prefix.rpartition(".")
        return f"{head}.schemas" if head and last == "events" else f"{self.subject_prefix}_schemas"

    @property
    def schema_subject_wildcard(self) -> str:
        return f"{self.schema_prefix}.>"

    def for_schemas(self) -> LedgerSettings:
        """The same settings with the schema events' prefix: a ``Ledger`` of schemas."""
        prefix = self.schema_prefix
        return self.model_copy(update={"subject_prefix": prefix, "schema_subject_prefix": prefix})

    @property
    def is_schema_ledger(self) -> bool:
        return self.schema_prefix == self.subject_prefix

    # --- the fleet: rollouts and scheduled changes (same stream), apply acknowledgements ---------

    def _sibling(self, name: str) -> str:
        """``config.events`` -> ``config.<name>``: a sibling subject family of the events."""
        base = self.subject_prefix.rsplit(".", 1)[0] if "." in self.subject_prefix else self.subject_prefix
        return f"{base}.{name}"

    @property
    def rollout_prefix(self) -> str:
        return self._sibling("rollouts")

    def rollout_subject(self, service: str) -> str:
        return f"{self.rollout_prefix}.{service}"

    @property
    def rollout_wildcard(self) -> str:
        return f"{self.rollout_prefix}.>"

    @property
    def acks_stream(self) -> str:
        """The bounded stream of apply acknowledgements (declared in streams.yaml)."""
        return f"{self.stream}_ACKS"

    @property
    def acks_prefix(self) -> str:
        return self._sibling("acks")

    def ack_subject(self, service: str, instance: str) -> str:
        return f"{self.acks_prefix}.{service}.{instance}"

    def acks_wildcard(self, service: str | None = None) -> str:
        return f"{self.acks_prefix}.{service}.*" if service else f"{self.acks_prefix}.>"
