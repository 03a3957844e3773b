"""The typer app: one thin function per command; heavy imports happen inside them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modreg.cli import _deps
from modreg.cli._check import check_app
from modreg.cli._distill import distill
from modreg.cli._options import JsonOption, RegistryOption
from modreg.cli._render import echo

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = ["app"]

app = typer.Typer(
    name="modreg",
    help="A registry of reusable equation and network modules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

app.add_typer(check_app, name="check")
app.command("distill")(distill)
check_app.command("dependents")(_deps.check_dependents)


def _registry(location: str | None, *, offline: bool = False) -> Registry:
    from modreg.registry import Registry

    return Registry(location, offline=True if offline else None)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@app.command()
def publish(
    directory: Annotated[Path, typer.Argument(help="Module directory holding modreg.yaml.")],
    registry: RegistryOption = None,
) -> None:
    """Validate a module directory and publish it as an immutable version."""
    result = _registry(registry).publish(directory)
    if not result.created:
        _stderr(f"note: {result.ref} was already published with identical content; nothing changed")
    print(f"published {result.ref} {result.digest}")


@app.command()
def pull(
    ref: Annotated[str, typer.Argument(help="NAME[@SPEC], e.g. 'physics/gravity@>=1,<2'.")],
    to: Annotated[
        Path | None, typer.Option("--to", help="Directory to write the module into.")
    ] = None,
    registry: RegistryOption = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Serve a remote registry from the local cache only (no network)."
        ),
    ] = False,
) -> None:
    """Fetch a verified copy of a module; print its directory."""
    # Under MODREG_TRUSTED_KEYS the registry refuses unsigned modules (Registry.pull).
    module = _registry(registry, offline=offline).pull(ref, to=to)
    _stderr(f"pulled {module.ref} {module.digest}")
    print(module.path)


@app.command()
def copy(
    ref: Annotated[
        str | None, typer.Argument(help="NAME@SPEC to copy (or --all).", show_default=False)
    ] = None,
    to: Annotated[str, typer.Option("--to", help="Target registry (path or URI).")] = "",
    copy_all: Annotated[bool, typer.Option("--all", help="Copy every version.")] = False,
    registry: RegistryOption = None,
) -> None:
    """Copy versions byte for byte to another registry (digests kept; safe to re-run)."""
    from modreg.errors import ConfigError
    from modreg.registry import Registry

    if not to or (ref is None) == (not copy_all):
        raise ConfigError("give one NAME@SPEC or --all, and --to REGISTRY: nothing was copied")
    source, target = _registry(registry), Registry(to)
    for one in source.refs() if copy_all else [str(ref)]:
        result = source.copy(one, target)
        state = "copied" if result.created else "already there"
        print(f"{state} {result.ref} {result.digest}")


@app.command("list")
def list_(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """List modules: name, latest version, kind, summary."""
    from modreg.cli._render import list_table, print_table

    rows = _registry(registry).list()
    if as_json:
        print(json.dumps([row.__dict__ for row in rows], indent=2))
    elif not rows:
        _stderr("the registry holds no modules yet: publish one with 'modreg publish DIR'")
    else:
        print_table(list_table(rows))


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME[@SPEC].")],
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a module's interface, body (equation or network), files and digests."""
    from modreg.cli._render import show_json, show_module

    record, manifest = _registry(registry).manifest(ref)
    if as_json:
        print(json.dumps(show_json(record, manifest), indent=2))
    else:
        show_module(record, manifest)


@app.command()
def verify(
    registry: RegistryOption = None,
    as_json: JsonOption = False,
    signatures: Annotated[
        bool, typer.Option("--signatures", help="Also check every stored signature.")
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="First restore damaged or missing objects from --from REGISTRY."
        ),
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--from", help="A registry (path or URI) holding the same versions, for --repair."
        ),
    ] = None,
) -> None:
    """Re-hash every stored object and check every record; exit 1 on any damage."""
    if repair != (source is not None):
        raise typer.BadParameter("--repair and --from REGISTRY go together", param_hint="--from")
    store = _registry(registry)
    repaired: list[str] = []
    if source is not None:
        restored = store.repair(_registry(source))
        repaired = restored.repaired
        for line in repaired if not as_json else []:
            echo(f"repaired {line}", err=True)
        for problem in restored.problems if not as_json else []:
            echo(f"not repaired {problem.key}: {problem.problem}", err=True)
    report = store.verify()
    if as_json:
        data = {
            "ok": report.ok,
            "repaired": repaired,
            "objects": report.objects,
            "records": report.records,
            "temporaries_removed": report.temporaries_removed,
            "problems": [p.__dict__ for p in report.problems],
        }
        print(json.dumps(data, indent=2))
    else:
        for problem in report.problems:
            echo(f"BAD {problem.key}: {problem.problem}")  # keys and messages quote stored text
        state = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        print(f"verified {report.objects} objects and {report.records} versions: {state}")
    signed_ok = _deps.verify_signatures(store, as_json) if signatures else True
    if not report.ok or not signed_ok:
        raise typer.Exit(1)


@app.command()
def yank(
    ref: Annotated[str, typer.Argument(help="Exact NAME@VERSION.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is yanked.")] = "",
    registry: RegistryOption = None,
) -> None:
    """Yank a version: ranges and 'latest' skip it; an exact pin still resolves."""
    record = _registry(registry).yank(ref, reason)
    print(f"yanked {record.ref}")


@app.command()
def gc(registry: RegistryOption = None) -> None:
    """Remove leftovers of crashed publishes (temp files, unreferenced objects)."""
    temporaries, objects = _registry(registry).gc()
    print(f"removed {temporaries} temporary file(s) and {objects} unreferenced object(s)")


for _command in (_deps.lock, _deps.tree, _deps.lineage, _deps.sign, _deps.signatures):
    app.command()(_command)
