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
from modreg.cli._options import (
    JsonOption,
    RegistryOption,
    remember_registry,
)
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


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


def _show_version(value: bool) -> None:
    if value:
        import modreg

        print(f"modreg {modreg.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    registry: RegistryOption = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """A registry of reusable equation and network modules."""
    remember_registry(ctx, registry)


@app.command()
def publish(
    directory: Annotated[Path, typer.Argument(help="Module directory holding modreg.yaml.")],
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a module directory and publish it as an immutable version."""
    result = _registry(registry).publish(directory)
    if not result.created:
        _stderr(f"note: {result.ref} was already published with identical content; nothing changed")
    if as_json:
        _print_json({"ref": result.ref, "digest": result.digest, "created": result.created})
    else:
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
    as_json: JsonOption = False,
) -> None:
    """Fetch a verified copy of a module; print its directory."""
    # Under MODREG_TRUSTED_KEYS the registry refuses unsigned modules (Registry.pull).
    module = _registry(registry, offline=offline).pull(ref, to=to)
    if as_json:
        _print_json({"ref": module.ref, "digest": module.digest, "path": str(module.path)})
        return
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
    as_json: JsonOption = False,
) -> None:
    """Copy versions byte for byte to another registry (digests kept; safe to re-run)."""
    from modreg.errors import UsageError
    from modreg.registry import Registry

    if not to or (ref is None) == (not copy_all):
        raise UsageError("give one NAME@SPEC or --all, and --to REGISTRY: nothing was copied")
    source, target = _registry(registry), Registry(to)
    copied = []
    for one in source.refs() if copy_all else [str(ref)]:
        result = source.copy(one, target)
        copied.append({"ref": result.ref, "digest": result.digest, "created": result.created})
        if not as_json:
            state = "copied" if result.created else "already there"
            print(f"{state} {result.ref} {result.digest}")
    if as_json:
        _print_json(copied)


@app.command("list")
def list_(
    prefix: Annotated[
        str,
        typer.Argument(help="Only names starting with this: a namespace ('physics/') or a name."),
    ] = "",
    search: Annotated[
        str, typer.Option("--search", help="Only names or summaries containing this text.")
    ] = "",
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """List modules: name, latest version, kind, summary (yanked versions with their reason)."""
    from modreg.cli._render import list_table, print_table, yank_lines

    rows = _registry(registry).list(prefix, search)
    if as_json:
        _print_json([row.__dict__ for row in rows])
    elif not rows and (prefix or search):
        _stderr("no module matches: run 'modreg list' without a filter to see them all")
    elif not rows:
        _stderr("the registry holds no modules yet: publish one with 'modreg publish DIR'")
    else:
        print_table(list_table(rows))
        echo(*yank_lines(rows))


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME[@SPEC].")],
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a module's interface, body (equation or network), files and digests."""
    from modreg.cli._render import show_json, show_module
    from modreg.errors import OfflineError

    store = _registry(registry)
    record, manifest = store.manifest(ref)
    try:
        yanked = store.yank_state(record.name, record.version)
    except OfflineError:  # a cached pin shows offline; whether it is yanked needs the network
        _stderr(f"note: offline, so whether {record.ref} is yanked was not checked")
        yanked = None
    if as_json:
        _print_json(show_json(record, manifest, yanked))
    else:
        show_module(record, manifest, yanked)


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


ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (shown by 'list' and 'show'), up to 1000 characters.")
]


@app.command()
def yank(
    ref: Annotated[str, typer.Argument(help="Exact NAME@VERSION.")],
    reason: ReasonOption = "",
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Yank a version: ranges and 'latest' skip it; an exact pin still resolves.

    Yanking again with another --reason records the new reason; 'modreg unyank' undoes it.
    """
    _change_yank(_registry(registry), ref, True, reason, as_json)


@app.command()
def unyank(
    ref: Annotated[str, typer.Argument(help="Exact NAME@VERSION.")],
    reason: ReasonOption = "",
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Undo a yank: ranges and 'latest' admit the version again."""
    _change_yank(_registry(registry), ref, False, reason, as_json)


def _change_yank(store: Registry, ref: str, yanked: bool, reason: str, as_json: bool) -> None:
    record = store.yank(ref, reason) if yanked else store.unyank(ref, reason)
    state = store.yank_state(record.name, record.version)
    now_yanked = state is not None and state.yanked
    if now_yanked != yanked:  # a writer beside us changed it back since
        _stderr(f"note: {record.ref} is {'not ' if not now_yanked else ''}yanked now")
    if as_json:
        _print_json({"ref": record.ref, **(state.to_json() if state else {"yanked": False})})
    else:
        print(f"{'yanked' if yanked else 'unyanked'} {record.ref}")


@app.command()
def gc(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """Remove leftovers of crashed publishes (temp files, unreferenced objects)."""
    temporaries, objects = _registry(registry).gc()
    if as_json:
        _print_json({"temporaries_removed": temporaries, "objects_removed": objects})
    else:
        print(f"removed {temporaries} temporary file(s) and {objects} unreferenced object(s)")


for _command in (_deps.lock, _deps.tree, _deps.lineage, _deps.sign, _deps.signatures):
    app.command()(_command)
