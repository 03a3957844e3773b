"""Replacement accuracy: does a model keep its accuracy when a part is replaced?

Three shapes of the same question, all answered by :func:`check_replacement`:

- **hybrid part**: ``model`` is a hybrid, ``part`` one of its parts, ``replacement`` the
  module put in its place (``Hybrid.replace``); the hybrid is evaluated with and without it.
- **drop-in**: no ``part``; ``replacement`` stands in for ``model`` as a whole (OLD vs NEW,
  e.g. a network and the equation distilled from it). Units of a different scale are
  converted at the boundary; a missing output or another dimension is refused.
- **alone**: no ``replacement``; ``model`` itself is held to the tolerance on the data.

Two checks come out of each: ``<check>`` on the reference data — per output port, the
metric of the original and of the replacement against the data, failing when the
replacement is worse by more than the tolerance — and ``<check>:range`` outside the data —
uniform, seeded draws over the declared input ranges, the metric of the replacement
against the original there, and the worst single disagreement. A law fitted on a narrow
slice of its domain passes the first and fails the second. Cost before and after
(:func:`modreg.cost`) is reported with the data check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modreg.check._data import Arrays, load_reference, sample_ranges
from modreg.check._metrics import Metric, degradation, perfect, scale, score
from modreg.check.report import CheckReport, Status, failure, run_check
from modreg.errors import ConfigError, GraphError, InterfaceMismatch, ModregError
from modreg.module import Module
from modreg.spec.compat import Difference, stand_in_problems
from modreg.spec.manifest import CheckSpec, Port
from modreg.spec.tolerance import Tolerance, parse_tolerance
from modreg.spec.units import conversion_factor

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = ["PortComparison", "check_replacement", "load_module", "run_spec"]

Evaluate = Callable[[Arrays], Arrays]
BATCH = 1 << 16


@dataclass(frozen=True)
class PortComparison:
    """One output port: original and replacement scored against a reference."""

    port: str
    unit: str
    metric: Metric
    original: float
    replaced: float
    scale: float
    limit: float

    @property
    def degradation(self) -> float:
        return degradation(self.metric, self.original, self.replaced)

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.replaced)) and self.degradation <= self.limit

    def line(self, tolerance: Tolerance) -> str:
        unit = f" {self.unit}" if self.metric in ("rmse", "mae") else ""
        of = f" = {tolerance} of {self.scale:.4g}{unit}" if tolerance.relative else ""
        return (
            f"{self.metric} {self.port}: {self.original:.4g} -> {self.replaced:.4g}{unit} "
            f"(worse by {self.degradation:.4g}, limit {self.limit:.4g}{of})"
        )

    def to_json(self) -> dict[str, Any]:
        keys = ("port", "unit", "metric", "original", "replaced", "scale", "limit")
        return {k: getattr(self, k) for k in keys} | {
            "degradation": self.degradation,
            "ok": self.ok,
        }


def load_module(ref_or_dir: str | Path, registry: Registry) -> Module:
    """A module folder when ``ref_or_dir`` is a directory, else a pulled ``NAME@SPEC``."""
    path = Path(ref_or_dir)
    return Module.from_dir(path) if path.is_dir() else registry.pull(str(ref_or_dir))


def _run(net: Any, ports: Mapping[str, Port], inputs: Arrays) -> Arrays:
    """Call a built module in batches; outputs back as float64 numpy arrays."""
    import torch

    from modreg.runtime._equation import torch_dtype

    rows = len(next(iter(inputs.values())))
    chunks: dict[str, list[np.ndarray[Any, Any]]] = {}
    with torch.no_grad():
        for start in range(0, rows, BATCH):
            feed = {
                name: torch.tensor(
                    values[start : start + BATCH], dtype=torch_dtype(ports[name].dtype)
                )
                for name, values in inputs.items()
            }
            for name, tensor in net(feed).items():
                chunks.setdefault(name, []).append(tensor.double().numpy())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def _evaluator(net: Any) -> Evaluate:
    ports = dict(net.interface.inputs)
    return lambda inputs: _run(net, ports, {n: inputs[n] for n in ports})


def _fixed_inputs(wires: Mapping[str, str], ports: Mapping[str, Port]) -> dict[str, float]:
    """Constant values for NEW's inputs that OLD lacks (a drop-in can only feed numbers)."""
    fixed: dict[str, float] = {}
    for port, text in wires.items():
        try:
            fixed[port] = float(text)
        except ValueError:
            raise ConfigError(
                f"--wire {port}={text}: a drop-in comparison can only fix an input to a number "
                f"(in {ports[port].unit if port in ports else 'the port unit'})"
            ) from None
    return fixed


def _drop_in(old: Any, new: Any, wires: Mapping[str, str]) -> Evaluate:
    """NEW called like OLD: OLD's inputs in, OLD's outputs (in OLD's units) out.

    NEW's inputs that OLD lacks are fixed to the numbers in ``wires`` (``rho=1.2``). Whether
    NEW can stand in is :func:`modreg.spec.compat.stand_in_problems`, with every output of
    OLD used; values cross this boundary as float64 arrays cast to each side's dtype.
    """
    old_in, old_out = old.interface.inputs, old.interface.outputs
    new_in, new_out = new.interface.inputs, new.interface.outputs
    fixed = _fixed_inputs(wires, new_in)
    problems = stand_in_problems(
        old.interface, new.interface, supplied_inputs=set(fixed), casts_dtype=True
    )
    if problems:
        raise InterfaceMismatch(
            f"{new.label} cannot stand in for {old.label}: "
            + "; ".join(_drop_in_sentence(problem) for problem in problems)
        )
    into = {p: conversion_factor(old_in[p].unit, new_in[p].unit) for p in new_in if p in old_in}
    back = {p: conversion_factor(new_out[p].unit, old_out[p].unit) for p in old_out}
    run = _evaluator(new)

    def evaluate(inputs: Arrays) -> Arrays:
        rows = len(next(iter(inputs.values())))
        feed = {p: inputs[p] * factor for p, factor in into.items()}
        feed |= {p: np.full((rows, *new_in[p].shape), v) for p, v in fixed.items() if p in new_in}
        outputs = run(feed)
        return {p: outputs[p] * back[p] for p in old_out}

    return evaluate


def _drop_in_sentence(problem: Difference) -> str:
    """A refusal in this command's words (``--wire`` fixes an input the original lacks)."""
    if problem.kind == "unfed":
        assert problem.new is not None
        return (
            f"{problem.where} ({problem.new.unit}) is not an input of the original: "
            f"--wire {problem.port}=VALUE"
        )
    return str(problem)


@dataclass(frozen=True)
class _Subject:
    """What is evaluated: the original, the replacement (None: the model alone), costs."""

    label: str
    inputs: Mapping[str, Port]
    outputs: Mapping[str, Port]
    original: Evaluate
    replaced: Evaluate | None
    nets: tuple[Any, ...]


def _prepare(
    model: Module,
    replacement: Module | None,
    part: str | None,
    registry: Registry,
    wires: Mapping[str, str],
) -> _Subject:
    from modreg.runtime import build

    net = build(model, registry=registry)
    interface = net.interface
    if replacement is None:
        return _Subject(
            model.ref, interface.inputs, interface.outputs, _evaluator(net), None, (net,)
        )
    if part is None:
        other = build(replacement, registry=registry)
        label = f"{replacement.ref} for {model.ref}"
        return _Subject(
            label,
            interface.inputs,
            interface.outputs,
            _evaluator(net),
            _drop_in(net, other, wires),
            (net, other),
        )
    if model.kind != "hybrid":
        raise GraphError(
            f"--part {part!r} needs a hybrid model but {model.ref} is a {model.kind} module: "
            "drop --part to compare the two modules drop-in"
        )
    from modreg.runtime import HybridNet

    assert isinstance(net, HybridNet)
    if part not in net.parts:
        raise GraphError(f"{model.ref} has no part {part!r}; its parts are {list(net.parts)}")
    swapped = net.replace(part, replacement, trainable=None, **dict(wires))
    label = f"{replacement.ref} as {model.ref}:{part}"
    return _Subject(
        label,
        interface.inputs,
        interface.outputs,
        _evaluator(net),
        _evaluator(swapped),
        (net, swapped),
    )


def _compare(
    subject: _Subject,
    reference: Arrays,
    original: Arrays,
    replaced: Arrays | None,
    metric: Metric,
    tolerance: Tolerance,
) -> list[PortComparison]:
    rows = []
    for port, spec in subject.outputs.items():
        truth = reference[port]
        before = score(metric, original[port], truth)
        after = before if replaced is None else score(metric, replaced[port], truth)
        if replaced is None:  # the model alone is held to the tolerance from "perfect"
            before, after = perfect(metric), before
        size = scale(metric, truth)
        rows.append(
            PortComparison(
                port, spec.unit, metric, before, after, size, tolerance.limit(scale=size)
            )
        )
    return rows


def _cost_lines(subject: _Subject, latency: bool) -> tuple[list[str], dict[str, Any]]:
    from modreg._cost import cost

    costs = [cost(net, latency=latency) for net in subject.nets]
    names = ("original", "replaced") if len(costs) == 2 else ("model",)
    return (
        [f"cost {name}: {c}" for name, c in zip(names, costs, strict=True)],
        {name: c.to_json() for name, c in zip(names, costs, strict=True)},
    )


def _data_check(
    subject: _Subject,
    reference: Arrays,
    data: Path,
    metric: Metric,
    tolerance: Tolerance,
    latency: bool,
) -> tuple[Status, str, tuple[str, ...], dict[str, Any]]:
    inputs = {p: reference[p] for p in subject.inputs}
    original = subject.original(inputs)
    replaced = None if subject.replaced is None else subject.replaced(inputs)
    rows = _compare(subject, reference, original, replaced, metric, tolerance)
    bad = [r for r in rows if not r.ok]
    worst = bad[0] if bad else max(rows, key=lambda r: r.degradation - r.limit)
    rows_text = f"{len(next(iter(inputs.values())))} rows of {data.name}"
    verdict = f"degraded beyond tolerance {tolerance}" if bad else "within tolerance"
    message = f"{worst.line(tolerance)} on {rows_text}: {verdict}"
    cost_lines, costs = _cost_lines(subject, latency)
    details = tuple(r.line(tolerance) for r in rows) + tuple(cost_lines)
    data_json = {"ports": [r.to_json() for r in rows], "cost": costs, "tolerance": str(tolerance)}
    return ("fail" if bad else "pass"), message, details, data_json


def _point(value: np.ndarray[Any, Any]) -> str:
    flat = [f"{x:.4g}" for x in np.ravel(value)]
    return flat[0] if np.ndim(value) == 0 else "[" + ", ".join(flat) + "]"


def _worst_point(samples: Arrays, original: Arrays, replaced: Arrays) -> tuple[str, float, str]:
    """The output port, normalised deviation and inputs where the two disagree most."""
    best = ("", -1.0, "")
    for port, before in original.items():
        size = float(np.sqrt(np.mean(np.square(before)))) or 1.0
        deviation = np.abs(replaced[port] - before).reshape(len(before), -1).max(axis=1) / size
        index = int(np.argmax(deviation))
        if deviation[index] > best[1]:
            where = ", ".join(f"{n}={_point(v[index])}" for n, v in samples.items())
            best = (port, float(deviation[index]), where)
    return best


def _range_check(
    subject: _Subject,
    metric: Metric,
    tolerance: Tolerance,
    count: int,
    seed: int,
    data: Arrays | None,
) -> tuple[Status, str, tuple[str, ...], dict[str, Any]]:
    samples, notes = sample_ranges(subject.inputs, count, seed=seed, fallback=data)
    original = subject.original(samples)
    if subject.replaced is None:
        bad = [p for p, v in original.items() if not np.isfinite(v).all()]
        message = (
            f"outputs {bad} are NaN or Inf inside the declared ranges"
            if bad
            else f"outputs finite over {count} draws of the declared input ranges"
        )
        return ("fail" if bad else "pass"), message, tuple(notes), {"samples": count}
    replaced = subject.replaced(samples)
    rows = _compare(subject, original, original, replaced, metric, tolerance)
    port, deviation, where = _worst_point(samples, original, replaced)
    failing = [r for r in rows if not r.ok]
    worst = failing[0] if failing else max(rows, key=lambda r: r.degradation - r.limit)
    verdict = f"disagrees beyond tolerance {tolerance}" if failing else "within tolerance"
    message = (
        f"{worst.metric} {worst.port} vs original over {count} draws of the declared ranges: "
        f"{worst.replaced:.4g} (limit {worst.limit:.4g}): {verdict}; worst {port} off by "
        f"{deviation:.3g} of its RMS at {where}"
    )
    details = (*(r.line(tolerance) for r in rows), *notes)
    data_json = {
        "ports": [r.to_json() for r in rows],
        "worst": {"port": port, "deviation": deviation, "at": where},
        "samples": count,
    }
    return ("fail" if failing else "pass"), message, details, data_json


def check_replacement(
    model: Module,
    replacement: Module | None,
    *,
    data: str | Path,
    registry: Registry,
    part: str | None = None,
    metric: Metric = "rmse",
    tolerance: str | Tolerance = "2%",
    samples: int = 2000,
    seed: int = 0,
    units: Mapping[str, str] | None = None,
    wires: Mapping[str, str] | None = None,
    latency: bool = True,
    report: CheckReport | None = None,
    module_label: str | None = None,
    check: str = "replace",
) -> CheckReport:
    """Check that ``replacement`` keeps ``model``'s accuracy, on data and over input ranges.

    Args:
        model: the model as published (a hybrid with ``part``; any module without).
        replacement: the module put in (None: hold ``model`` alone to the tolerance).
        data: reference CSV or Parquet; columns are port names (``v[0]`` for vectors).
        part: the hybrid part replaced (None: ``replacement`` replaces ``model`` drop-in).
        metric, tolerance: what may degrade and by how much (``2%`` or ``0.01``).
        samples, seed: uniform draws over the declared input ranges (0: skip that check).
        units: units of data columns that differ from the port's.
        wires: wires for replacement inputs the old part lacked (``{"rho": "1.2"}``).

    Returns:
        ``report`` (or a new one) with two results: ``check`` and ``check:range``.

    Raises:
        ConfigError: a tolerance that does not parse.
        GraphError, InterfaceMismatch: ``part`` is unknown or the replacement does not fit.
        InterfaceMismatch, InputError: the data lacks a port, holds NaN, or declares a unit
            of the wrong dimension (bad input, not a finding: no result is added).
    """
    report = report if report is not None else CheckReport()
    tol = _tolerance(tolerance)
    subject = _prepare(model, replacement, part, registry, wires or {})
    label = module_label or subject.label
    ports = dict(subject.inputs) | dict(subject.outputs)
    reference = load_reference(Path(data), ports, units=units)
    with run_check(report, label, check) as outcome:
        outcome.set(*_data_check(subject, reference, Path(data), metric, tol, latency))
    if samples > 0:
        with run_check(report, label, f"{check}:range") as outcome:
            outcome.set(*_range_check(subject, metric, tol, samples, seed, reference))
    return report


def _tolerance(value: str | Tolerance) -> Tolerance:
    if isinstance(value, Tolerance):
        return value
    try:
        return parse_tolerance(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def run_spec(
    module: Module,
    spec: CheckSpec,
    registry: Registry,
    report: CheckReport,
    *,
    check: str,
    data_root: Path,
    allow_missing_data: bool = False,
    latency: bool = True,
) -> None:
    """Run one ``checks:`` entry of a module's manifest (CI mode); add its results."""
    data = data_root / spec.data
    if not data.is_file() and allow_missing_data:
        with run_check(report, module.ref, check) as outcome:
            outcome.set("skip", f"reference data {spec.data!r} is absent (run 'dvc pull')")
        return
    try:
        model, replacement = _spec_subjects(module, spec, registry)
        check_replacement(
            model,
            replacement,
            data=data,
            registry=registry,
            part=spec.part,
            metric=spec.metric,
            tolerance=spec.tolerance,
            samples=spec.samples,
            seed=spec.seed,
            units=spec.units,
            wires=spec.wires,
            latency=latency,
            report=report,
            module_label=module.ref,
            check=check,
        )
    except ModregError as exc:
        report.add(failure(module.ref, check, exc))


def _spec_subjects(
    module: Module, spec: CheckSpec, registry: Registry
) -> tuple[Module, Module | None]:
    """(model, replacement) a ``checks:`` entry names; the module itself is the replacement."""
    if spec.model is not None:
        return registry.pull(spec.model), module
    if spec.replaces is not None:
        return registry.pull(spec.replaces), module
    return module, None
