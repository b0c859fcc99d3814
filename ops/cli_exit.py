"""The CLI's exit codes: the project's one table (``ledger.exit_codes``), shown in every --help."""

from __future__ import annotations

from ledger.exit_codes import EXIT_CODES_HELP, ExitCode, exit_code_for

__all__ = ["ExitCode", "exit_code_for", "EPILOG"]

EPILOG = EXIT_CODES_HELP
