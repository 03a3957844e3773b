"""One table from exceptions to one-line CLI messages and exit codes.

=====  ===========================================================================
code   meaning
=====  ===========================================================================
0      done
1      an error modreg reports (:class:`~modreg.errors.ModregError`, a failed OS call),
       or a gate that did not pass (``verify``, ``check``)
2      usage: options or arguments that are missing, malformed or contradict (click's
       usage errors and :class:`~modreg.errors.UsageError`); fix the command line
70     unexpected (``EX_SOFTWARE``): a bug in modreg; the line says to report it
130    interrupted
=====  ===========================================================================
"""

from __future__ import annotations

import errno
import os
import sys

from modreg._text import safe_text
from modreg.errors import CheckFailed, ModregError, UsageError

__all__ = ["EXIT_CODES", "debug_enabled", "exit_code_for", "format_error"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNEXPECTED = 70  # sysexits.h EX_SOFTWARE
EXIT_INTERRUPTED = 130

# First match wins; anything else is EXIT_UNEXPECTED. Click exits 2 on its own usage errors.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (KeyboardInterrupt, EXIT_INTERRUPTED),
    (UsageError, EXIT_USAGE),
    (CheckFailed, EXIT_ERROR),
    (ModregError, EXIT_ERROR),
    (OSError, EXIT_ERROR),
)


def debug_enabled() -> bool:
    """Whether ``MODREG_DEBUG`` asks for tracebacks (read directly: config may be the error)."""
    return os.environ.get("MODREG_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def format_error(exc: BaseException) -> str:
    """The single line shown for ``exc`` (control characters it quotes shown escaped)."""
    if isinstance(exc, ModregError):
        message = str(exc)
    elif isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        reason = exc.strerror or str(exc)
        fix = ": free some disk space" if exc.errno == errno.ENOSPC else ""
        message = f"{reason}{where}{fix}"
    else:
        message = (
            f"unexpected {type(exc).__name__}: {exc} (rerun with MODREG_DEBUG=1 and report it)"
        )
    return "error: " + safe_text(" ".join(message.split()))


def exit_code_for(exc: BaseException) -> int:
    """The exit code of ``exc``: the first row of :data:`EXIT_CODES` it is an instance of."""
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), EXIT_UNEXPECTED)


def report(exc: BaseException) -> int:
    """Print ``exc`` for the user (traceback only in debug mode); return the exit code."""
    if debug_enabled():
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(format_error(exc), file=sys.stderr)
    return exit_code_for(exc)
