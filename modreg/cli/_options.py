"""Options every command shares (one definition, so help texts never drift apart).

``--registry`` is accepted twice: by the root command (``modreg --registry X list``) and by
each command (``modreg list --registry X``). The root's value is stored on the typer
context as the default of every command's own ``--registry`` (click's ``default_map``,
which each subcommand's context inherits), so the command's own wins when both are given
and commands read one parameter only.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["JsonOption", "RegistryOption", "remember_registry"]

RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        "-r",
        help="Registry path or URI: file://, s3://BUCKET/PREFIX (default: $MODREG_REGISTRY "
        "or $MODREG_HOME/registry). Accepted before the command too.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print data as JSON on stdout (one object or list).")
]


def remember_registry(ctx: typer.Context, location: str | None) -> None:
    """Make the root command's ``--registry`` the default of every command's own."""
    if location is not None:
        ctx.default_map = {**(ctx.default_map or {}), **_defaults(ctx.command, location)}


def _defaults(group: Any, location: str) -> dict[str, Any]:
    """``{command: {"registry": location}}`` for each command below ``group`` that has one."""
    found: dict[str, Any] = {}
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            found[name] = _defaults(command, location)
        elif any(param.name == "registry" for param in command.params):
            found[name] = {"registry": location}
    return found
