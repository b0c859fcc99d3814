"""The CLI's exit codes, and which error maps to which (the one place that decides it).

    0  ok
    1  not found, or ``verify`` found a broken chain
    2  usage error: bad arguments, an invalid document, refused by authentication
    3  unavailable: NATS, PostgreSQL or the API cannot be reached or failed
    4  conflict: the service is not at the expected version
"""

from __future__ import annotations

from enum import IntEnum

from ledger.errors import LedgerError, NotFound, ProjectionDiverged, UsageError, VersionConflict

__all__ = ["ExitCode", "exit_code_for", "EPILOG"]


class ExitCode(IntEnum):
    OK = 0
    NOT_FOUND = 1
    USAGE = 2
    UNAVAILABLE = 3
    CONFLICT = 4

    # ``verify`` reports a broken chain with the same code as "not found": the thing asked
    # about is not as it should be, and retrying will not change that.
    VERIFY_FAILED = 1


EPILOG = """exit codes:
  0  ok
  1  not found, or verify found a broken hash chain / version gap
  2  usage error (bad arguments, invalid document, authentication refused)
  3  unavailable (NATS, PostgreSQL or the API cannot be reached, or failed)
  4  conflict (the service is not at the expected version)"""


def exit_code_for(exc: LedgerError) -> ExitCode:
    """The exit code of an error from the project's hierarchy."""
    if isinstance(exc, NotFound):  # a UsageError too: check it first
        return ExitCode.NOT_FOUND
    if isinstance(exc, ProjectionDiverged):  # a broken chain found while reading the stream
        return ExitCode.VERIFY_FAILED
    if isinstance(exc, VersionConflict):
        return ExitCode.CONFLICT
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    return ExitCode.UNAVAILABLE
