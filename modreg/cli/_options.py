"""Options every command shares (one definition, so help texts never drift apart)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOption", "RegistryOption"]

RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        "-r",
        help="Registry path or URI: file://, s3://BUCKET/PREFIX (default: $MODREG_REGISTRY "
        "or $MODREG_HOME/registry).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]
