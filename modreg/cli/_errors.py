"""One table from exceptions to one-line CLI messages and exit codes."""

from __future__ import annotations

import errno
import os
import sys

from modreg._text import safe_text
from modreg.errors import ModregError

__all__ = ["debug_enabled", "exit_code_for", "format_error"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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
    return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_ERROR


def report(exc: BaseException) -> int:
    """Print ``exc`` for the user (traceback only in debug mode); return the exit code."""
    if debug_enabled():
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(format_error(exc), file=sys.stderr)
    return exit_code_for(exc)
