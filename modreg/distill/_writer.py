"""Write what distillation found: an equation module ready to publish, and its Pareto front.

The module keeps the teacher's interface exactly (every input stays a port, used or not), so
it replaces the teacher drop-in and ``modreg check replace`` can compare the two. Its
``metrics:`` are measured by building the written module with :func:`modreg.build` and
running it, never copied from the search: they describe the artefact people will use.

The Pareto front goes *next to* the module (``<out>.pareto.json`` and ``<out>.pareto.png``):
a module directory may hold only ``modreg.yaml`` and ``README.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
import yaml

from modreg.distill._constants import UnitConstant, attach_units, inline
from modreg.distill._select import SELECTION_RULE
from modreg.distill._vector import OutputFit
from modreg.errors import DistillError
from modreg.module import Module
from modreg.spec.expr import format_expression
from modreg.spec.manifest import MANIFEST_FILE, Port, dump_manifest, parse_manifest
from modreg.spec.units import parse_unit

__all__ = [
    "SELECTION_RULE",
    "Equations",
    "Scores",
    "assemble",
    "check_out",
    "fidelity",
    "pareto_paths",
    "staging",
    "write_manifest",
    "write_pareto",
]

Arrays = Mapping[str, np.ndarray[Any, Any]]


@dataclass(frozen=True)
class Scores:
    """Fidelity of one output against a reference, over every component of every row."""

    rmse: float
    r2: float
    max_rel_error: float

    def to_json(self) -> dict[str, float]:
        return {"rmse": self.rmse, "r2": self.r2, "max_rel_error": self.max_rel_error}


@dataclass(frozen=True)
class Equations:
    """The manifest body: equation text and constants per output, and each law with numbers."""

    text: dict[str, str]
    constants: dict[str, dict[str, Any]]
    inline: dict[str, str]


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that exists and is not an empty directory (never overwrite work)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DistillError(
            f"--out {str(out)!r} already exists and is not empty: choose a new path or "
            "remove it first"
        )


def pareto_paths(out: Path) -> tuple[Path, Path]:
    """``<out>.pareto.json`` and ``<out>.pareto.png``, beside the module directory."""
    return out.with_name(out.name + ".pareto.json"), out.with_name(out.name + ".pareto.png")


def assemble(
    fits: Mapping[str, OutputFit], inputs: Mapping[str, Port], outputs: Mapping[str, Port]
) -> Equations:
    """Equation text per output over ports and named constants that carry the units."""
    taken = {*inputs, *outputs}
    units = {name: port.unit for name, port in inputs.items()}
    equations = Equations({}, {}, {})
    for name, fit in fits.items():
        port = outputs[name]
        expr: Any = sp.Integer(0)
        found: dict[str, UnitConstant] = {}
        if fit.scale is not None:
            direction = fit.direction
            unit = port.unit if direction is None else _ratio(port.unit, inputs[direction].unit)
            expr, found = attach_units(fit.scale, units, unit, taken=taken)
            taken |= set(found)
            if direction is not None:
                expr = expr * sp.Symbol(direction, real=True)
        named = {n: {"value": c.value, "unit": c.unit} for n, c in found.items()}
        if fit.offset is not None and fit.offset_name is not None:
            taken.add(fit.offset_name)
            expr = sp.Symbol(fit.offset_name, real=True) + expr
            named[fit.offset_name] = {"value": fit.offset, "unit": port.unit}
        for entry in named.values():
            entry["description"] = f"fitted by modreg distill for output {name}"
        equations.text[name] = format_expression(expr)
        equations.inline[name] = format_expression(inline(expr, found))
        equations.constants.update(named)
    return equations


def _ratio(numerator: str, denominator: str) -> str:
    return str(parse_unit(numerator) / parse_unit(denominator))


def write_manifest(directory: Path, data: Mapping[str, Any]) -> Module:
    """Validate ``data`` as a manifest, write it into ``directory`` and load the module back.

    Raises:
        InvalidManifest: the distilled manifest does not validate (a modreg bug if it happens).
    """
    manifest = parse_manifest(yaml.safe_dump(dict(data), sort_keys=False), source="distilled")
    (directory / MANIFEST_FILE).write_text(dump_manifest(manifest))
    return Module.from_dir(directory)


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A temporary directory beside ``out`` that becomes ``out`` on success, vanishes on error.

    Writing beside and renaming means an interrupted distillation never leaves a half-written
    module at ``out`` for someone to publish.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    temporary.mkdir()
    try:
        yield temporary
        check_out(out)
        os.replace(temporary, out)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def fidelity(
    module: Module, inputs: Arrays, reference: Arrays, ports: Mapping[str, Port]
) -> dict[str, Scores]:
    """Scores of the built equation module against ``reference`` outputs on ``inputs``."""
    from modreg.check._metrics import score
    from modreg.distill._teacher import evaluate
    from modreg.runtime import build

    predicted = evaluate(build(module), module.manifest.inputs, inputs)
    return {
        name: Scores(
            score("rmse", predicted[name], reference[name]),
            score("r2", predicted[name], reference[name]),
            score("max_rel", predicted[name], reference[name]),
        )
        for name in ports
    }


def pareto_json(fits: Mapping[str, OutputFit], outputs: Mapping[str, Port]) -> dict[str, Any]:
    """The front of every output, points in order of complexity, the chosen one marked."""
    return {
        "selection": SELECTION_RULE,
        "outputs": {
            name: {
                "unit": outputs[name].unit,
                "form": fit.form,
                "chosen": fit.chosen,
                "points": [
                    {"expression": p.text, "complexity": p.complexity, "rmse": p.rmse}
                    for p in fit.pareto
                ],
            }
            for name, fit in fits.items()
        },
    }


def write_pareto(
    out: Path, fits: Mapping[str, OutputFit], outputs: Mapping[str, Port], title: str
) -> tuple[Path, Path]:
    """Write the front as JSON and as a complexity-vs-RMSE picture (log scale) beside ``out``."""
    json_path, png_path = pareto_paths(out)
    json_path.write_text(json.dumps(pareto_json(fits, outputs), indent=2) + "\n")
    _plot(png_path, fits, outputs, title)
    return json_path, png_path


def _plot(
    path: Path, fits: Mapping[str, OutputFit], outputs: Mapping[str, Port], title: str
) -> None:
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    from modreg._text import plain_figure_text, safe_text

    # Titles, units and the data path are module or user text: shown as written, no $math$.
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.add_subplot()
    floor = 1e-300
    for name, fit in fits.items():
        xs = [p.complexity for p in fit.pareto]
        ys = [max(p.rmse, floor) for p in fit.pareto]
        floor = max(floor, 1e-12 * max(ys))
        ys = [max(y, floor) for y in ys]
        (line,) = axes.plot(xs, ys, "o-", label=safe_text(f"{name} ({outputs[name].unit})"))
        chosen = fit.pareto[fit.chosen]
        axes.plot(
            [chosen.complexity],
            [max(chosen.rmse, floor)],
            "*",
            markersize=16,
            color=line.get_color(),
            markeredgecolor="black",
        )
        note = axes.annotate(
            safe_text(_short(chosen.text)),
            (chosen.complexity, max(chosen.rmse, floor)),
            textcoords="offset points",
            xytext=(8, 8),
            fontsize=8,
        )
        plain_figure_text(note)
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_yscale("log")
    axes.set_xlabel("complexity (expression nodes)")
    axes.set_ylabel("RMSE (output unit)")
    plain_figure_text(axes.set_title(safe_text(title), fontsize=10))
    axes.grid(True, which="both", alpha=0.3)
    plain_figure_text(*axes.legend(title="output (★ chosen)", fontsize=8).get_texts())
    figure.savefig(path, dpi=110)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
