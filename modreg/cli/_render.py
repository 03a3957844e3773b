"""Rich tables, plain lines and JSON shapes for the CLI's data output.

Every text that comes from a module (names, summary, ports, units, paths, provenance,
messages quoting them) reaches the terminal made safe by :func:`modreg._text.safe_text`:
plain lines through :func:`echo`, rich cells as a :class:`rich.text.Text` made by
:func:`_plain`, so rich never reads markup in it either. JSON needs neither: ``json.dumps``
escapes every control and non-ASCII character.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from modreg._text import safe_text

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from modreg.registry import ListEntry, VersionRecord, YankState
    from modreg.spec.manifest import Manifest, Port

__all__ = ["echo", "list_table", "print_table", "show_json", "show_module", "yank_lines"]


def echo(*lines: object, err: bool = False) -> None:
    """Print each line (stdout, or stderr with ``err``), control and bidi characters escaped.

    One call per line: a newline inside a line is shown as ``\\n``, never obeyed.
    """
    stream = sys.stderr if err else sys.stdout
    for line in lines:
        print(safe_text(line), file=stream)


def _plain(value: object) -> Text:
    """Module text as a rich cell: no markup interpreted, control characters escaped."""
    from rich.text import Text

    return Text(safe_text(value))


def print_table(table: Table) -> None:
    from rich.console import Console

    Console(soft_wrap=False).print(table)


def list_table(rows: list[ListEntry]) -> Table:
    from rich.table import Table

    table = Table("name", "latest", "kind", "versions", "summary", box=None, header_style="bold")
    for row in rows:
        count = f"{len(row.versions)}" + (f" ({len(row.yanked)} yanked)" if row.yanked else "")
        cells = (row.name, row.latest, row.kind, count, row.summary)
        table.add_row(*map(_plain, cells))
    return table


def yank_lines(rows: list[ListEntry]) -> list[str]:
    """``yanked NAME@VERSION: REASON`` for every yanked version of ``rows`` (below the table)."""
    return [
        f"yanked {row.name}@{version}" + (f": {reason}" if reason else "")
        for row in rows
        for version, reason in row.reasons.items()
    ]


def _yank_line(state: YankState | None) -> str | None:
    if state is None or not state.yanked:
        return None
    return (
        "YANKED"
        + (f" {state.at}" if state.at else "")
        + (f": {state.reason}" if state.reason else "")
    )


def _range(port: Port) -> str:
    return f"[{port.range[0]:g}, {port.range[1]:g}]" if port.range else "-"


def _ports_table(manifest: Manifest) -> Table:
    from rich.table import Table

    table = Table("port", "dir", "unit", "shape", "dtype", "range", box=None, header_style="bold")
    for direction, ports in (("in", manifest.inputs), ("out", manifest.outputs)):
        for name, port in ports.items():
            shape = str(list(port.shape)) if port.shape else "scalar"
            cells = (name, direction, port.unit, shape, port.dtype, _range(port))
            table.add_row(*map(_plain, cells))
    return table


def _equation_lines(manifest: Manifest) -> list[str]:
    from modreg.spec.equations import equation_symbols
    from modreg.spec.expr import parse_expression

    names = list(equation_symbols(manifest))
    lines = []
    for output, text in (manifest.equation or {}).items():
        import sympy as sp

        pretty = sp.pretty(parse_expression(text, names), use_unicode=True)
        pad = " " * (len(output) + 3)
        body = pretty.splitlines()
        middle = len(body) // 2
        lines += [(f"{output} = " if i == middle else pad) + line for i, line in enumerate(body)]
    return lines


def _cost_line(manifest: Manifest) -> str | None:
    """``cost: N parameters, F FLOP/sample`` from the manifest (none for hybrids)."""
    from modreg._cost import estimate
    from modreg.errors import ModregError

    try:
        estimated = estimate(manifest)
    except ModregError:
        return None
    return None if estimated is None else f"cost: {estimated}"


def show_module(record: VersionRecord, manifest: Manifest, yanked: YankState | None) -> None:
    """Print a module's identity, yank state, interface, body and file digests."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False, highlight=False)
    title = _plain(f"{record.ref}  {manifest.kind}  {record.digest}")
    title.stylize("bold", 0, len(record.ref))
    console.print(title)
    if (line := _yank_line(yanked)) is not None:
        console.print(_plain(line), style="bold red")
    if manifest.summary:
        console.print(_plain(manifest.summary))
    console.print(_ports_table(manifest))
    if manifest.equation:
        console.print("\n[bold]equation[/bold]")
        for line in _equation_lines(manifest):
            console.print(_plain("  " + line))
    if manifest.constants:
        consts = Table("constant", "value", "unit", "trainable", box=None, header_style="bold")
        for name, c in manifest.constants.items():
            cells = (name, c.value, c.unit, "yes" if c.trainable else "no")
            consts.add_row(*map(_plain, cells))
        console.print(consts)
    if manifest.network is not None:
        console.print(
            "\n[bold]network[/bold]", _plain(manifest.network.model_dump(exclude_defaults=True))
        )
    files = Table("file", "size", "sha256", box=None, header_style="bold")
    for f in record.files:
        files.add_row(*map(_plain, (f.path, f"{f.size:,}", f.sha256)))
    console.print(files)


def show_json(
    record: VersionRecord, manifest: Manifest, yanked: YankState | None
) -> dict[str, Any]:
    """``show --json``: ``yanked`` is the yank state (``yanked``, ``reason``, ``at``, ``step``)
    or null when the version was never yanked."""
    return {
        "ref": record.ref,
        "digest": record.digest,
        "published": record.published,
        "yanked": None if yanked is None else yanked.to_json(),
        "files": [f.to_json() for f in record.files],
        "manifest": manifest.model_dump(mode="json", exclude_none=True),
    }
