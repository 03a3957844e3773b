"""``distill_module``: a network module or a table in, a publishable equation module out.

The steps, each in its own module: get samples (:mod:`._teacher` queries a network over its
input ranges or on given data; :mod:`._dataset` reads a table with units), find one law per
output (:mod:`._vector` reduces vectors to the engine's scalar problems), then write the
module, its fidelity and cost, and the Pareto front (:mod:`._writer`).

Fidelity is measured on *fresh* samples (seed + 1) in network mode, so the figures say how
well the equation stands in for the teacher, not how well it fits the points it was fitted
to.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modreg.distill._dataset import load_dataset, load_port_data
from modreg.distill._teacher import (
    CapturedPart,
    NetworkTeacher,
    Teacher,
    check_ranges,
    load_teacher,
    sample_inputs,
)
from modreg.distill._vector import OutputFit, Search, distill_output, scalar_features
from modreg.distill._writer import (
    Equations,
    Scores,
    assemble,
    check_out,
    fidelity,
    staging,
    write_manifest,
    write_pareto,
)
from modreg.errors import DistillError
from modreg.spec.manifest import Port

if TYPE_CHECKING:
    from modreg.module import Module
    from modreg.registry import Registry

__all__ = ["DistillReport", "OutputReport", "distill_module", "vector_constants"]

Arrays = dict[str, np.ndarray[Any, Any]]
Progress = Callable[[str, float], None]
FRESH_SAMPLES = (1000, 10000)  # fidelity draws: at least, at most


def vector_constants(constants: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{'g0': '[0.0, 0.0, -9.81] m/s**2'}``: the constants a law shows by name only."""
    return {
        name: f"{c['value']} {c['unit']}"
        for name, c in constants.items()
        if isinstance(c["value"], list)
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class OutputReport:
    """What was found for one output port, and how well the written module reproduces it."""

    fit: OutputFit
    unit: str
    expression: str  # the law with its numbers inline
    equation: str  # the manifest text (numbers that carry units are named constants)
    train: Scores
    teacher: Scores | None
    data: Scores | None

    @property
    def primary(self) -> Scores:
        """Against the teacher on fresh samples when there is one, else against the data."""
        return self.teacher or self.data or self.train

    def to_json(self) -> dict[str, Any]:
        fit = self.fit
        scores = {
            key: {k: _finite(v) for k, v in s.to_json().items()}
            for key, s in (("teacher", self.teacher), ("data", self.data), ("train", self.train))
            if s is not None
        }
        return {
            "expression": self.expression,
            "equation": self.equation,
            "unit": self.unit,
            "form": fit.form,
            "complexity": fit.pareto[fit.chosen].complexity,
            "rmse": _finite(self.primary.rmse),
            "r2": _finite(self.primary.r2),
            "max_rel_error": _finite(self.primary.max_rel_error),
            "exact": fit.exact,
            "timed_out": fit.timed_out,
            "seconds": fit.seconds,
            "fidelity": scores,
            "pareto": [
                {"expression": p.text, "complexity": p.complexity, "rmse": _finite(p.rmse)}
                for p in fit.pareto
            ],
        }


@dataclass(frozen=True)
class DistillReport:
    """The written module, per-output results, cost figures and any warnings."""

    module: Module
    outputs: dict[str, OutputReport]
    constants: dict[str, dict[str, Any]]
    pareto_json: Path
    pareto_png: Path
    flops_per_sample: float
    teacher_flops_per_sample: float | None
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.module.path

    def to_json(self) -> dict[str, Any]:
        """The first output's fields at top level, every output under ``outputs``."""
        first = next(iter(self.outputs.values())).to_json()
        ratio = None
        if self.teacher_flops_per_sample is not None:
            ratio = self.teacher_flops_per_sample / max(self.flops_per_sample, 1.0)
        return first | {
            "seconds": self.seconds,
            "module": str(self.path),
            "name": self.module.name,
            "version": self.module.version,
            "digest": self.module.digest,
            "constants": self.constants,
            "outputs": {name: report.to_json() for name, report in self.outputs.items()},
            "cost": {
                "flops_per_sample": self.flops_per_sample,
                "teacher_flops_per_sample": self.teacher_flops_per_sample,
                "cost_ratio": ratio,
            },
            "pareto_json": str(self.pareto_json),
            "pareto_png": str(self.pareto_png),
            "warnings": self.warnings,
        }


@dataclass
class _Source:
    """Samples to fit on, and references to measure the written module against."""

    label: str
    inputs: dict[str, Port]
    outputs: dict[str, Port]
    train_in: Arrays
    train_out: Arrays
    provenance: dict[str, str | int | float | bool | None]
    default_name: str
    teacher: Module | None = None
    fresh: tuple[Arrays, Arrays] | None = None
    data: tuple[Arrays, Arrays] | None = None
    oracle: Callable[[str], Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]] | None] = (
        lambda _name: None
    )
    metrics: Mapping[str, float] | None = None  # the teacher's recorded error; None: exact data


def _rounded(arrays: Mapping[str, np.ndarray[Any, Any]], ports: Mapping[str, Port]) -> Arrays:
    """Inputs as the teacher sees them (its port dtype), so features match its outputs."""
    return {n: np.asarray(arrays[n]).astype(ports[n].dtype).astype(np.float64) for n in ports}


def _teacher_source(
    ref: str, registry: Registry, data: Path | None, units: Path | None, samples: int, seed: int
) -> _Source:
    from modreg.runtime import build

    teacher = load_teacher(ref, registry)
    manifest = teacher.manifest
    provenance: dict[str, str | int | float | bool | None] = {
        "distilled_from": teacher.ref,
        "teacher_digest": teacher.digest,
    }
    data_pair = None
    if data is not None:
        train_in = load_port_data(data, manifest.inputs, required=True, units_path=units)
        assert train_in is not None
        train_in = _rounded(train_in, manifest.inputs)
        data_out = load_port_data(data, manifest.outputs, required=False, units_path=units)
        data_pair = None if data_out is None else (train_in, data_out)
        provenance |= _dataset_provenance(data)
    else:
        check_ranges(manifest.inputs, teacher.ref)
        _check_samples(manifest.inputs, samples)
        train_in = _rounded(sample_inputs(manifest.inputs, samples, seed=seed), manifest.inputs)
    network = NetworkTeacher(teacher, build(teacher))
    source = _queried_source(network, train_in, provenance, f"{teacher.name}-eq", seed)
    source.teacher, source.data = teacher, data_pair
    return source


def _queried_source(
    teacher: Teacher,
    train_in: Arrays,
    provenance: dict[str, str | int | float | bool | None],
    default_name: str,
    seed: int,
    fresh_in: Arrays | None = None,
) -> _Source:
    """Samples of a teacher that answers queries: at ``train_in`` and at fresh inputs (by
    default, draws over the input ranges)."""
    inputs = dict(teacher.interface.inputs)
    if fresh_in is None:
        fresh_in = _fresh_inputs(inputs, len(next(iter(train_in.values()))), seed, train_in)
    return _Source(
        label=teacher.label,
        inputs=inputs,
        outputs=dict(teacher.interface.outputs),
        train_in=train_in,
        train_out=teacher.query(train_in),
        provenance=provenance,
        default_name=default_name,
        fresh=(fresh_in, teacher.query(fresh_in)),
        oracle=_oracle(teacher, inputs),
        metrics=teacher.metrics,
    )


def _part_source(part: CapturedPart, samples: int, seed: int) -> _Source:
    """A captured part: queried like a network teacher with ``call=``, else its rows.

    The search is fitted on (at most ``samples`` of) the captured inputs, the distribution
    the part really sees, and a queryable part is scored on captured inputs the search never
    saw: a box over the ranges seen would also query the network where it was never trained
    (the corners of a ``dx`` square, where a force law is largest). With too few rows left,
    fresh inputs are drawn over the ranges, as for a network module.
    """
    interface = part.interface
    table = part.table()
    rows = len(next(iter(table.values())))
    order = np.random.default_rng(seed).permutation(rows)
    keep, rest = np.sort(order[:samples]), np.sort(order[samples : samples + FRESH_SAMPLES[1]])
    train_in = _rounded({n: table[n][keep] for n in interface.inputs}, interface.inputs)
    provenance = {"distilled_from": part.label} | part.provenance
    safe = "".join(c if c.isalnum() or c in ".-" else "-" for c in part.label.lower())
    default_name = f"distilled/{safe.strip('-.') or 'part'}"
    if part.queryable:
        fresh_in = None
        if len(rest) >= FRESH_SAMPLES[0]:
            fresh_in = _rounded({n: table[n][rest] for n in interface.inputs}, interface.inputs)
        return _queried_source(part, train_in, provenance, default_name, seed, fresh_in)
    train_out = {n: table[n][keep] for n in interface.outputs}
    return _Source(
        label=part.label,
        inputs=dict(interface.inputs),
        outputs=dict(interface.outputs),
        train_in=train_in,
        train_out=train_out,
        provenance=provenance,
        default_name=default_name,
        data=(train_in, train_out),
        metrics=part.metrics,
    )


def _check_samples(inputs: Mapping[str, Port], samples: int) -> None:
    """Refuse a sample count the engine would refuse, naming the option that fixes it."""
    from modreg.distill._validate import MIN_SAMPLES

    features = len(scalar_features(inputs, sample_inputs(inputs, 1, seed=0)).names)
    need = max(MIN_SAMPLES, 5 * (features + 1))
    if samples < need:
        raise DistillError(
            f"--samples {samples} is too few for {features} feature(s): give at least {need}"
        )


def _fresh_inputs(
    inputs: Mapping[str, Port], train_rows: int, seed: int, train_in: Arrays
) -> Arrays:
    """Draws the search never saw (seed + 1); over the data's span where a range is missing."""
    from modreg.check._data import sample_ranges

    count = min(max(train_rows, FRESH_SAMPLES[0]), FRESH_SAMPLES[1])
    fresh, _notes = sample_ranges(inputs, count, seed=seed + 1, fallback=train_in)
    return _rounded(fresh, inputs)


def _oracle(
    teacher: Teacher, inputs: Mapping[str, Port]
) -> Callable[[str], Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]] | None]:
    """For scalar outputs of all-scalar inputs, the teacher as a function of the features."""

    def for_output(name: str) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]] | None:
        if any(port.shape for port in inputs.values()):
            return None

        def query(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            columns = {n: x[:, i] for i, n in enumerate(inputs)}
            return teacher.query(_rounded(columns, inputs))[name]

        return query

    return for_output


def _dataset_provenance(path: Path) -> dict[str, str | int | float | bool | None]:
    from modreg.distill._dataset import file_sha256

    return {"dataset": path.name, "dataset_sha256": file_sha256(path)}


def _data_source(data: Path, target: str, units: Path) -> _Source:
    dataset = load_dataset(data, target, units)
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in target.lower()).strip("-._")
    arrays = {n: dataset.arrays[n] for n in dataset.inputs}
    outputs = {n: dataset.arrays[n] for n in dataset.outputs}
    return _Source(
        label=data.name,
        inputs=dataset.inputs,
        outputs=dataset.outputs,
        train_in=arrays,
        train_out=outputs,
        provenance=_dataset_provenance(data),
        default_name=f"distilled/{safe or 'target'}",
        data=(arrays, outputs),
    )


def _fit_outputs(
    source: _Source,
    time_budget: float,
    seed: int,
    workers: int,
    progress: Progress | None,
    effort: float = 1.0,
) -> tuple[dict[str, OutputFit], list[str]]:
    """One law per output; the time left is shared equally by the outputs still to come."""
    fits: dict[str, OutputFit] = {}
    warnings: list[str] = []
    names = list(source.outputs)
    start = time.monotonic()
    for i, name in enumerate(names):
        left = max(time_budget - (time.monotonic() - start), 1.0)

        def report(label: str, fraction: float, i: int = i, name: str = name) -> None:
            if progress is not None:
                progress(f"{name}: {label}", (i + fraction) / len(names))

        search = Search(
            left / (len(names) - i),
            seed,
            workers,
            report,
            source.oracle(name),
            effort,
            _noise(source, name),
            None if source.fresh is None else (source.fresh[0], source.fresh[1][name]),
        )
        fit = distill_output(
            name,
            source.outputs[name],
            source.inputs,
            source.train_in,
            source.train_out[name],
            search,
        )
        fits[name] = fit
        if fit.timed_out and not fit.within_noise:
            warnings.append(
                f"the time cap cut the search for output {name!r} before its work was done: "
                "kept the best Pareto point found so far (exact: false); raise --time-budget "
                "(the answer then no longer depends on the machine's speed)"
            )
    return fits, warnings


def _noise(source: _Source, name: str) -> float:
    """The teacher's error level for output ``name``: recorded, never below float32 rounding.

    Without a teacher (data mode) it is 0; a teacher that records no error is taken to be
    right to :data:`._select.UNRECORDED_ERROR` of its output's RMS. A captured part's rows
    are a network's outputs, so they carry its error even in data mode.
    """
    from modreg.distill._noise import FLOAT32_FLOOR, recorded_noise
    from modreg.distill._select import UNRECORDED_ERROR

    if source.metrics is None:
        return 0.0
    recorded = recorded_noise(source.metrics, name, single_output=len(source.outputs) == 1)
    y = np.asarray(source.train_out[name], dtype=np.float64)
    rms = float(np.sqrt(np.mean(y**2)))
    if recorded is None:
        return UNRECORDED_ERROR * rms
    return max(recorded, FLOAT32_FLOOR * rms)


def distill_module(
    ref: str | CapturedPart | None = None,
    *,
    out: str | Path,
    data: str | Path | None = None,
    target: str | None = None,
    units: str | Path | None = None,
    registry: Registry | None = None,
    samples: int = 10000,
    time_budget: float = 60.0,
    seed: int = 0,
    workers: int = 2,
    name: str | None = None,
    version: str = "0.1.0",
    progress: Progress | None = None,
    effort: float = 1.0,
) -> DistillReport:
    """Distil a network module or a captured part (``ref``), or a table (``data`` + ``target``
    + ``units``).

    Args:
        ref: ``NAME@SPEC`` of a network module in ``registry`` (the teacher); a
            :class:`modreg.capturing.Capture` (queried like a network teacher when it was
            captured with ``call=``, else its rows are fitted in data mode, at the error level
            of a network); None for data mode.
        out: the module directory to write (must not exist, or be empty).
        data: CSV/Parquet. Data mode: the table to fit. Network mode: inputs to query the
            teacher on instead of uniform samples (and outputs to score against, if present).
        target: data mode: the column (or vector port) to explain.
        units: YAML mapping columns to units (required in data mode).
        samples: network mode without data: how many input points to draw.
        time_budget: the wall-clock cap for the whole search, shared by the outputs; the
            search itself is bounded by work, so the cap only bites on a slow machine.
        effort: scales the search's work allowance (the tree search); the same effort and
            seed give the same equation on any machine.
        seed: seeds the draws and the search; the same seed gives the same equation.
        workers: search processes.
        name, version: of the written module (default name: teacher's + ``-eq``, or
            ``distilled/<target>``).
        progress: called with (stage label, overall fraction in [0, 1]).

    Raises:
        DistillError: bad arguments or data (see the messages), no law of a supported form.
        ModuleNotFound: ``ref`` is not in the registry.
    """
    start = time.monotonic()
    out = Path(out)
    if not (time_budget > 0 and math.isfinite(time_budget)):
        raise DistillError(f"--time-budget {time_budget} must be a positive number of seconds")
    check_out(out)
    source = _source(ref, data, target, units, registry, samples, seed)
    fits, warnings = _fit_outputs(source, time_budget, seed, workers, progress, effort)
    settings = {
        "samples": len(next(iter(source.train_in.values()))),
        "seed": seed,
        "time_budget_s": time_budget,
        "effort": effort,
    }
    return _write(
        source, fits, out, name or source.default_name, version, settings, warnings, start
    )


def _source(
    ref: str | CapturedPart | None,
    data: str | Path | None,
    target: str | None,
    units: str | Path | None,
    registry: Registry | None,
    samples: int,
    seed: int,
) -> _Source:
    data_path = None if data is None else Path(data)
    units_path = None if units is None else Path(units)
    if isinstance(ref, CapturedPart):
        if data is not None or target is not None or units is not None:
            raise DistillError(
                f"data, target and units do not apply to a captured part ({ref.label}): its "
                "rows and ports are the data; save() it and pass data= to fit a table instead"
            )
        return _part_source(ref, samples, seed)
    if ref is not None:
        if target is not None:
            raise DistillError(
                "--target applies to --data alone: a network module's outputs are its targets"
            )
        from modreg.registry import Registry

        return _teacher_source(ref, registry or Registry(), data_path, units_path, samples, seed)
    if data_path is None:
        raise DistillError(
            "nothing to distill: give a network module (NAME@VERSION) or --data FILE "
            "--target COLUMN --units FILE"
        )
    if target is None or units_path is None:
        missing = "--target COLUMN" if target is None else "--units FILE (column: unit YAML)"
        raise DistillError(f"--data needs {missing}: name the column to explain and its units")
    return _data_source(data_path, target, units_path)


def _write(
    source: _Source,
    fits: dict[str, OutputFit],
    out: Path,
    name: str,
    version: str,
    settings: dict[str, Any],
    warnings: list[str],
    start: float,
) -> DistillReport:
    """Write the module (metrics from the built module), then the front beside it."""
    import modreg
    from modreg._cost import cost
    from modreg.module import Module

    equations = assemble(fits, source.inputs, source.outputs)
    manifest = _manifest_data(source, equations, fits, name, version, settings, modreg.__version__)
    with staging(out) as directory:
        module = write_manifest(directory, manifest)
        teacher = None if source.fresh is None else fidelity(module, *source.fresh, source.outputs)
        data = None if source.data is None else fidelity(module, *source.data, source.outputs)
        flops = cost(module, latency=False).flops_per_sample
        teacher_flops = None
        if source.teacher is not None:
            teacher_flops = cost(source.teacher, latency=False).flops_per_sample
        metrics = _metrics(fits, teacher, data, flops, teacher_flops)
        write_manifest(directory, manifest | {"metrics": metrics})
    module = Module.from_dir(out)
    json_path, png_path = write_pareto(
        out, fits, source.outputs, f"{module.ref} from {source.label}"
    )
    outputs = {
        port: OutputReport(
            fit,
            source.outputs[port].unit,
            equations.inline[port],
            equations.text[port],
            Scores(fit.rmse, fit.r2, fit.max_rel_error),
            None if teacher is None else teacher[port],
            None if data is None else data[port],
        )
        for port, fit in fits.items()
    }
    return DistillReport(
        module,
        outputs,
        equations.constants,
        json_path,
        png_path,
        flops,
        teacher_flops,
        time.monotonic() - start,
        warnings,
    )


def _port_data(ports: Mapping[str, Port]) -> dict[str, Any]:
    return {n: p.model_dump(mode="json", exclude_defaults=True) for n, p in ports.items()}


def _manifest_data(
    source: _Source,
    equations: Equations,
    fits: Mapping[str, OutputFit],
    name: str,
    version: str,
    settings: Mapping[str, Any],
    modreg_version: str,
) -> dict[str, Any]:
    laws = "; ".join(f"{port} = {text}" for port, text in equations.inline.items())
    laws += "".join(f", where {n} = {v}" for n, v in vector_constants(equations.constants).items())
    exact = all(fit.exact for fit in fits.values())
    return {
        "name": name,
        "version": version,
        "kind": "equation",
        "summary": f"Equation distilled from {source.label}"[:300],
        "description": (
            f"Distilled by modreg distill from {source.label}: {laws}. "
            + ("Exact on the samples." if exact else "Approximate: see metrics.")
        )[:20000],
        "inputs": _port_data(source.inputs),
        "outputs": _port_data(source.outputs),
        "equation": equations.text,
        "constants": equations.constants,
        "provenance": source.provenance
        | dict(settings)
        | {"exact": exact, "modreg_version": modreg_version, "tool": "modreg distill"},
    }


def _metrics(
    fits: Mapping[str, OutputFit],
    teacher: Mapping[str, Scores] | None,
    data: Mapping[str, Scores] | None,
    flops: float,
    teacher_flops: float | None,
) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for port, fit in fits.items():
        metrics[f"complexity_{port}"] = float(fit.pareto[fit.chosen].complexity)
        for prefix, scores in (("teacher", teacher), ("data", data)):
            if scores is not None:
                s = scores[port]
                metrics[f"{prefix}_rmse_{port}"] = s.rmse
                metrics[f"{prefix}_max_rel_{port}"] = s.max_rel_error
                metrics[f"{prefix}_r2_{port}"] = s.r2
    metrics["flops_per_sample"] = flops
    if teacher_flops is not None:
        metrics["teacher_flops_per_sample"] = teacher_flops
        metrics["cost_ratio"] = teacher_flops / max(flops, 1.0)
    return {k: v for k, v in metrics.items() if math.isfinite(v)}
