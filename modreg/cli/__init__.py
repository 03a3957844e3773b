"""The ``modreg`` command line: thin typer commands over the library.

:func:`main` is the console-script entry point; it turns every modreg error into one line
``error: ...`` on stderr with exit code 1 (usage errors exit 2), and shows a traceback only
when ``MODREG_DEBUG=1``.
"""

from __future__ import annotations

from modreg.cli._main import main

__all__ = ["main"]
