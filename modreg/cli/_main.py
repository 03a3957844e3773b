"""Entry point: build the typer app and translate errors at the boundary."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the ``modreg`` command; exits 0, or the code ``cli/_errors.py`` gives the error."""
    from modreg.cli._app import app
    from modreg.cli._errors import report

    try:
        app(args=argv, prog_name="modreg", standalone_mode=True)
    except SystemExit:
        raise
    except BaseException as exc:
        sys.exit(report(exc))
