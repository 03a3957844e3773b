"""The ``modreg`` command line: thin typer commands over the library.

:func:`main` is the console-script entry point; it turns every error into one line
``error: ...`` on stderr with the exit code of the table in ``cli/_errors.py`` (1 an error
or a failed gate, 2 usage, 70 unexpected, 130 interrupted), and shows a traceback only when
``MODREG_DEBUG=1``.
"""

from __future__ import annotations

from modreg.cli._main import main

__all__ = ["main"]
