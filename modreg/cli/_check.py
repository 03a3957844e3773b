"""``modreg check``: interface policy, replacement accuracy and CI mode over a folder.

``modreg check DIR`` is CI mode (the same as ``modreg check ci DIR``): the group routes any
argument list that names no subcommand to ``ci``, so the short form CI scripts use works
next to ``check interface`` and ``check replace``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from modreg.cli._options import JsonOption, RegistryOption

if TYPE_CHECKING:
    from modreg.check.report import CheckReport
    from modreg.registry import Registry

__all__ = ["check_app"]

DEFAULT_COMMAND = "ci"
MAX_SAMPLES = 1_000_000  # as CheckSpec.samples


class _DefaultToCi(TyperGroup):
    """A group whose arguments go to ``ci`` when they name no subcommand."""

    # ctx is typer's vendored click Context, a private type: Any keeps the override honest.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        wants_help = any(a in ("--help", "-h") for a in args)
        if args and not wants_help and not any(a in self.commands for a in args):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


check_app = typer.Typer(
    cls=_DefaultToCi,
    help="Gate module changes: interface semver policy, replacement accuracy, CI over a folder.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JunitOption = Annotated[
    Path | None,
    typer.Option("--junit", help="Also write a JUnit XML report (one testcase per check)."),
]
LatencyOption = Annotated[
    bool, typer.Option("--latency/--no-latency", help="Measure latency in cost reports.")
]


def _registry(location: str | None) -> Registry:
    from modreg.registry import Registry

    return Registry(location)


def _finish(report: CheckReport, as_json: bool, junit: Path | None) -> None:
    """Print the report, write JUnit, exit 1 unless every check held."""
    if junit is not None:
        report.write_junit(junit)
    if as_json:
        print(report.dumps())
        for result in report.failures:
            print(result.line(), file=sys.stderr)
    else:
        from modreg.check.report import render_table

        render_table(report)
    if not report.ok:
        raise typer.Exit(1)


def _samples(count: int) -> int:
    """``--samples`` within the bound a manifest's ``checks:`` entry has."""
    from modreg.errors import UsageError

    if count > MAX_SAMPLES:
        raise UsageError(
            f"--samples {count} is more than {MAX_SAMPLES:,} draws: give a smaller count"
        )
    return count


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    from modreg.errors import UsageError

    result: dict[str, str] = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        if not sep or not key or not text:
            raise UsageError(f"{option} {value!r} must be PORT=VALUE, e.g. {option} v=km/h")
        result[key] = text
    return result


@check_app.command("ci")
def ci(
    path: Annotated[Path, typer.Argument(help="A folder of module folders, or one module.")],
    registry: RegistryOption = None,
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help="Where checks' data paths start (default: cwd)."),
    ] = None,
    allow_missing_data: Annotated[
        bool,
        typer.Option("--allow-missing-data", help="Skip, not fail, checks whose data is absent."),
    ] = False,
    latency: LatencyOption = True,
    as_json: JsonOption = False,
    junit: JunitOption = None,
) -> None:
    """CI mode: validate, re-hash and semver-check every module folder, run its checks."""
    from modreg.check.ci import check_repository

    report = check_repository(
        path,
        _registry(registry),
        data_root=data_root,
        allow_missing_data=allow_missing_data,
        latency=latency,
    )
    _finish(report, as_json, junit)


@check_app.command("interface")
def interface(
    old: Annotated[str, typer.Argument(help="OLD: NAME@VERSION in the registry, or a folder.")],
    new: Annotated[str, typer.Argument(help="NEW: a module folder, or NAME@VERSION.")],
    registry: RegistryOption = None,
    as_json: JsonOption = False,
    junit: JunitOption = None,
) -> None:
    """Diff OLD and NEW; fail when NEW's version bump is smaller than its changes need."""
    from modreg.check.ci import check_interface, load_side
    from modreg.check.report import CheckReport

    store = _registry(registry)
    report = CheckReport()
    check_interface(load_side(old, store), load_side(new, store), report)
    _finish(report, as_json, junit)


@check_app.command("replace")
def replace(
    model: Annotated[str, typer.Option("--model", help="Model: NAME@SPEC or a folder.")],
    data: Annotated[Path, typer.Option("--data", help="Reference data, CSV or Parquet.")],
    with_: Annotated[
        str | None,
        typer.Option("--with", help="Replacement: NAME@SPEC or a folder (none: model alone)."),
    ] = None,
    part: Annotated[
        str | None, typer.Option("--part", help="Hybrid part to replace (none: drop-in).")
    ] = None,
    metric: Annotated[str, typer.Option("--metric", help="rmse, mae, max_rel or r2.")] = "rmse",
    tolerance: Annotated[
        str, typer.Option("--tolerance", help="Allowed degradation: '2%' or absolute '0.01'.")
    ] = "2%",
    samples: Annotated[
        int, typer.Option("--samples", min=0, help="Draws over declared input ranges (0: skip).")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the range draws.")] = 0,
    unit: Annotated[
        list[str] | None, typer.Option("--unit", help="PORT=UNIT of a data column (repeatable).")
    ] = None,
    wire: Annotated[
        list[str] | None,
        typer.Option("--wire", help="PORT=SOURCE for a new input of the part (repeatable)."),
    ] = None,
    latency: LatencyOption = True,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
    junit: JunitOption = None,
) -> None:
    """Evaluate MODEL with and without the replacement on data and over its input ranges."""
    from modreg.check.replace import check_replacement, load_module

    samples = _samples(samples)
    store = _registry(registry)
    report = check_replacement(
        load_module(model, store),
        None if with_ is None else load_module(with_, store),
        data=data,
        registry=store,
        part=part,
        metric=_metric(metric),
        tolerance=tolerance,
        samples=samples,
        seed=seed,
        units=_pairs(unit, "--unit"),
        wires=_pairs(wire, "--wire"),
        latency=latency,
    )
    _finish(report, as_json, junit)


def _metric(text: str) -> Any:
    from modreg.check._metrics import METRICS
    from modreg.errors import UsageError

    if text not in METRICS:
        raise UsageError(f"unknown metric {text!r}: choose one of {', '.join(METRICS)}")
    return text
