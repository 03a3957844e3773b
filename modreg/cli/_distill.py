"""``modreg distill``: a network module or a table in, an equation module out.

Thin over :func:`modreg.distill.distill_module`; everything heavy is imported inside the
command so ``modreg --help`` stays instant. Progress is a rich bar on stderr (none with
``--json``, whose stdout is one JSON object); warnings go to stderr either way.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modreg.cli._options import JsonOption, RegistryOption

if TYPE_CHECKING:
    from modreg.distill import DistillReport

__all__ = ["distill"]

# Samples are drawn as float64 arrays per input: 10⁷ points of a few inputs is already
# hundreds of MB, and the search gains nothing from more.
MAX_SAMPLES = 10_000_000
MAX_TIME_BUDGET = 7 * 24 * 3600.0


def _check_options(samples: int, time_budget: float, workers: int) -> None:
    """Refuse option values whose cost is absurd before anything is read or drawn."""
    from modreg.errors import UsageError

    if samples > MAX_SAMPLES:
        raise UsageError(
            f"--samples {samples} is more than {MAX_SAMPLES:,}: the inputs would not fit in "
            "memory; give a smaller count"
        )
    if not time_budget <= MAX_TIME_BUDGET:  # also refuses nan
        raise UsageError(f"--time-budget {time_budget} is not a number of seconds up to a week")
    if workers > 256:
        raise UsageError(f"--workers {workers} is more than 256 search processes")


@contextmanager
def _progress_bar(enabled: bool, budget: float) -> Iterator[Callable[[str, float], None] | None]:
    """A rich progress bar on stderr fed by the search's (label, fraction) callback."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:  # a log file gets the result and warnings, not redraws
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"distilling (budget {budget:g} s)", total=1.0)

        def update(label: str, fraction: float) -> None:
            progress.update(task, completed=fraction, description=label)

        yield update


def _summary(report: DistillReport) -> None:
    """The human form: each law with its scores, the cost, then what was written where."""
    from modreg.distill._run import vector_constants

    shown = vector_constants(report.constants)
    for port, output in report.outputs.items():
        data = output.to_json()
        print(f"{port} = {output.expression}")
        for constant, value in shown.items():
            if re.search(rf"\b{constant}\b", output.equation):
                print(f"  where {constant} = {value}")
        print(
            f"  {'exact' if data['exact'] else 'approximate'}, complexity {data['complexity']}, "
            f"RMSE {output.primary.rmse:.4g} {output.unit}, R² {output.primary.r2:.6g}, "
            f"max rel error {output.primary.max_rel_error:.3g}"
        )
    cost = report.to_json()["cost"]
    if cost["cost_ratio"] is not None:
        print(
            f"cost: {cost['flops_per_sample']:g} FLOP/sample vs the teacher's "
            f"{cost['teacher_flops_per_sample']:g} ({cost['cost_ratio']:.3g}x cheaper)"
        )
    print(f"wrote {report.path} ({report.module.ref}); publish with: modreg publish {report.path}")
    print(f"pareto front: {report.pareto_json}, {report.pareto_png}")


def distill(
    ref: Annotated[
        str | None,
        typer.Argument(help="Network module to distill, NAME@SPEC (omit with --data alone)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="CSV/Parquet: the table to fit, or inputs to query the network on."
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Data mode: the column to explain.")
    ] = None,
    units: Annotated[
        Path | None, typer.Option("--units", help="YAML mapping each column to a pint unit.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Module directory to write (default: distilled/<name>)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Module name (default: the teacher's + '-eq')."),
    ] = None,
    version: Annotated[str, typer.Option("--version", help="Module version.")] = "0.1.0",
    samples: Annotated[
        int, typer.Option("--samples", min=1, help="Network mode: input points to draw.")
    ] = 10000,
    time_budget: Annotated[
        float,
        typer.Option(
            "--time-budget", min=0.1, help="Wall-clock cap in seconds for the whole search."
        ),
    ] = 60.0,
    effort: Annotated[
        float,
        typer.Option(
            "--effort",
            min=0.01,
            help="Scales the search's work (not time): the same effort and seed give the "
            "same equation on any machine.",
        ),
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the draws and the search.")] = 0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Search processes.")] = 2,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Distill a network module, or a table of data, into an equation module."""
    from modreg.distill import distill_module
    from modreg.registry import Registry

    _check_options(samples, time_budget, workers)
    target_dir = out or _default_out(ref, name, target)
    with _progress_bar(not as_json, time_budget) as progress:
        report = distill_module(
            ref,
            out=target_dir,
            data=data,
            target=target,
            units=units,
            registry=Registry(registry) if ref is not None else None,
            samples=samples,
            time_budget=time_budget,
            seed=seed,
            workers=workers,
            effort=effort,
            name=name,
            version=version,
            progress=progress,
        )
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _summary(report)


def _default_out(ref: str | None, name: str | None, target: str | None) -> Path:
    """``distilled/<last part of the module name>``: where the showcase keeps equations."""
    if name:
        tail = name.rsplit("/", 1)[-1]
    elif ref:
        tail = ref.split("@", 1)[0].rsplit("/", 1)[-1] + "-eq"
    else:
        tail = (target or "target").lower()
    return Path("distilled") / tail
