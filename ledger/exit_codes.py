"""The exit codes of every entry point (``config-ledger``, ``python -m projector``,
``python -m api``, ``python -m ledger``): one table, the same meaning everywhere.

    0    ok
    1    not found: the service, version or instant asked about does not exist
    2    usage: bad arguments or settings, an invalid document, authentication refused
    3    unavailable: NATS, PostgreSQL or the API cannot be reached, or failed
    4    conflict: the service is not at the expected version (``--if-version``, ``edit``)
    5    integrity: a broken hash chain or version gap (``verify``), or the projector's
         fail-stop (the stream and the projection disagree)
    6    drift: ``streams apply --dry-run`` found differences to apply
    70   internal error: a bug (the traceback is on stderr)
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

from enum import IntEnum

from .errors import LedgerError, NotFound, ProjectionDiverged, UsageError, VersionConflict

__all__ = ["ExitCode", "exit_code_for", "EXIT_CODES_HELP"]


class ExitCode(IntEnum):
    OK = 0
    NOT_FOUND = 1
    USAGE = 2
    UNAVAILABLE = 3
    CONFLICT = 4
    INTEGRITY = 5
    DRIFT = 6
    INTERNAL = 70
    INTERRUPTED = 130


EXIT_CODES_HELP = """exit codes:
  0    ok
  1    not found (service, version or instant)
  2    usage error (bad arguments, invalid document, authentication refused)
  3    unavailable (NATS, PostgreSQL or the API cannot be reached, or failed)
  4    conflict (the service is not at the expected version)
  5    integrity (broken hash chain or version gap; projector fail-stop)
  6    drift (streams apply --dry-run found changes)
  70   internal error (a bug)
  130  interrupted"""


def exit_code_for(exc: LedgerError) -> ExitCode:
    """The exit code of an error from the project's hierarchy."""
    if isinstance(exc, NotFound):  # a UsageError too: check it first
        return ExitCode.NOT_FOUND
    if isinstance(exc, ProjectionDiverged):
        return ExitCode.INTEGRITY
    if isinstance(exc, VersionConflict):
        return ExitCode.CONFLICT
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    return ExitCode.UNAVAILABLE
