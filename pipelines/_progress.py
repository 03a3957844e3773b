"""A rich progress bar on stderr for long stage loops."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[str], None]]:
    """Yield ``advance(status)``; draws a live bar on a terminal, a few lines otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(label, total=total, status="")
        done = 0

        def advance(status: str) -> None:
            nonlocal done
            done += 1
            progress.update(task, advance=1, status=status)
            if not console.is_terminal and (done % max(1, total // 5) == 0 or done == total):
                print(f"{label}: {done}/{total} {status}", file=sys.stderr, flush=True)

        yield advance
