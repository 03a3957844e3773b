"""Commands over dependencies and trust: check dependents, lock, tree, lineage, sign, signatures.

Thin functions over :mod:`modreg.deps` (dependents, lock, lineage, tree) and
:mod:`modreg.signing`; heavy imports happen inside them so ``modreg --help`` stays instant.
Every line that quotes a module (names, ranges, provenance, check messages, signature
verdicts) is printed through :func:`~modreg.cli._render.echo`, terminal-safe.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modreg.cli._options import JsonOption, RegistryOption
from modreg.cli._render import echo

if TYPE_CHECKING:
    from modreg.deps.dependents import Progress
    from modreg.registry import Registry

__all__ = [
    "check_dependents",
    "lineage",
    "lock",
    "sign",
    "signatures",
    "tree",
    "verify_signatures",
]

PngOption = Annotated[
    Path | None, typer.Option("--png", help="Also draw the graph into this PNG file.")
]


def _registry(location: str | None) -> Registry:
    from modreg.registry import Registry

    return Registry(location)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A rich bar on stderr, one step per dependent (none with --json or off a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("dependents", total=None)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=label or "done")

        yield update


def check_dependents(
    ref: Annotated[str, typer.Argument(help="The new version, NAME@VERSION (published).")],
    in_: Annotated[
        Path | None,
        typer.Option("--in", help="A folder of module sources whose hybrids count too."),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help="Where checks' data paths start (default: cwd)."),
    ] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report.")
    ] = None,
) -> None:
    """Rebuild every hybrid whose range admits REF with it; re-run their checks."""
    from modreg.deps.dependents import check_dependents as run
    from modreg.deps.dependents import failing_lines

    with _progress(not as_json) as progress:
        report = run(_registry(registry), ref, sources=in_, data_root=data_root, progress=progress)
    if junit is not None:
        report.check_report().write_junit(junit)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        echo(*report.lines())
        if not report.results:
            echo(f"no published hybrid requires a range admitting {report.ref}")
    echo(*failing_lines(report), err=True)
    if not as_json:
        echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


def lock(
    directory: Annotated[Path, typer.Argument(help="A hybrid module folder.")],
    upgrade: Annotated[
        bool, typer.Option("--upgrade", help="Move to the newest versions whose checks pass.")
    ] = False,
    name: Annotated[
        str | None, typer.Argument(help="With --upgrade: only this required module.")
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help="Where checks' data paths start (default: cwd)."),
    ] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write or refresh DIR/modreg.lock; --upgrade [NAME] moves pins the checks allow."""
    from modreg.deps.lock import upgrade_lock, write_lock
    from modreg.errors import UsageError

    store = _registry(registry)
    if name is not None and not upgrade:
        raise UsageError(f"NAME {name!r} is only used with --upgrade: add --upgrade")
    if upgrade:
        result = upgrade_lock(directory, store, name=name, data_root=data_root)
    else:
        result = write_lock(directory, store)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    echo(*(f"tried {line}" for line in result.tried), err=True)
    echo(*(change.line() for change in result.changes))
    if result.written:
        echo(f"wrote {directory / 'modreg.lock'}")
    elif upgrade and result.tried:
        print("no newer version passes the checks: lock unchanged")
        raise typer.Exit(1)
    else:
        print("lock up to date: unchanged")


def tree(
    ref: Annotated[str, typer.Argument(help="NAME[@SPEC] of a published module.")],
    registry: RegistryOption = None,
    as_json: JsonOption = False,
    png: PngOption = None,
) -> None:
    """Show a module's dependencies: versions, digests, the ranges that admit them."""
    from modreg.deps.tree import dependency_tree, plot_tree, tree_text

    node = dependency_tree(_registry(registry), ref)
    if png is not None:
        plot_tree(node, png)
    if as_json:
        print(json.dumps(node.to_json(), indent=2))
    else:
        echo(*tree_text(node))


def lineage(
    ref: Annotated[str, typer.Argument(help="NAME[@SPEC] of a published module.")],
    registry: RegistryOption = None,
    as_json: JsonOption = False,
    png: PngOption = None,
) -> None:
    """Show where a module comes from (teacher, data, run, tool) and what uses it."""
    from modreg.deps.lineage import lineage as trace
    from modreg.deps.lineage import lineage_text, plot_lineage

    item = trace(_registry(registry), ref)
    if png is not None:
        plot_lineage(item, png)
    if as_json:
        print(json.dumps(item.to_json(), indent=2))
    else:
        echo(*lineage_text(item))


def sign(
    ref: Annotated[str, typer.Argument(help="NAME[@SPEC] of a published module.")],
    key: Annotated[Path, typer.Option("--key", help="EC P-256 private key, PEM.")],
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", help="Variable holding the key's password, if any."),
    ] = None,
    hash_: Annotated[
        str,
        typer.Option(
            "--hash", help="File hash the statement lists: sha256, or blake3 (faster checks)."
        ),
    ] = "sha256",
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a published version (OpenSSF model-signing bundle); stored beside its record."""
    import os

    from modreg.errors import UsageError
    from modreg.signing import sign as run

    password = None
    if password_env is not None:
        password = os.environ.get(password_env)
        if password is None:
            raise UsageError(f"--password-env {password_env}: that variable is not set")
    result = run(_registry(registry), ref, key, password=password, algorithm=hash_)
    if not result.created:
        print(
            f"note: {result.ref} was already signed by this key; nothing changed", file=sys.stderr
        )
    if as_json:
        data = {"ref": result.ref, "signer": result.signer, "created": result.created}
        print(json.dumps(data, indent=2))
    else:
        echo(f"signed {result.ref} by {result.signer}")


def signatures(
    ref: Annotated[str, typer.Argument(help="NAME[@SPEC] of a published module.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write each bundle as OUT/<signer>.sig (model_signing)."),
    ] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a version's signers (and their verdict under MODREG_TRUSTED_KEYS)."""
    from modreg.signing import check_signatures, export_signatures, trusted_keys_from_env

    store = _registry(registry)
    checks = check_signatures(store, trusted_keys_from_env() or (), [ref])
    if out is not None:
        for path in export_signatures(store, ref, out):
            echo(f"wrote {path}", err=True)
    if as_json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    elif not checks:
        echo(f"{store.resolve(ref).ref} is not signed")
    else:
        echo(*(check.line() for check in checks))


def verify_signatures(registry: Registry, to_stderr: bool = False) -> bool:
    """``modreg verify --signatures``: judge every stored signature; False on any bad one.

    With ``to_stderr`` (``--json``) the lines go to stderr, keeping stdout one JSON object.
    """
    from modreg.signing import check_signatures, trusted_keys_from_env

    keys = trusted_keys_from_env() or ()
    checks = check_signatures(registry, keys)
    echo(*(check.line() for check in checks), err=to_stderr)
    bad = sum(c.status == "bad" for c in checks)
    unknown = sum(c.status == "unknown" for c in checks)
    note = f", {unknown} by keys not in MODREG_TRUSTED_KEYS" if unknown else ""
    echo(f"checked {len(checks)} signature(s): {bad} bad{note}", err=to_stderr)
    return bad == 0
