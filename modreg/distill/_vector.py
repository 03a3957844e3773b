"""Reduce vector ports to the scalar problems the search engine solves, and back.

The engine fits a scalar target of scalar features, and the equation grammar has no
indexing, so vectors enter only through rotation-invariant scalars and leave only as a
direction times a scalar:

- **features**: every scalar input, ``norm(u)`` of each vector input ``u`` (named
  ``norm_u``) and ``dot(u, w)`` of each pair of same-shape vector inputs (``dot_u_w``);
- **vector outputs**, tried in order: (a) a constant vector, when the output's spread is
  tiny; (b) ``s * u``, parallel to a same-shape vector input, with the scalar
  ``s = (F·u)/(u·u)`` distilled from the features; (c) ``c + s * u``, a constant plus a
  parallel part, ``c`` fitted by least squares jointly with a free ``s`` per row.

Rows where ``|u|`` is small are left out when ``s`` is computed: there ``s`` is a ratio of
two small numbers and the teacher's error would dominate it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sympy as sp

from modreg.distill._engine import DistillResult, distill_arrays
from modreg.distill._expr import evaluate
from modreg.distill._parsimony import parsimonious, search_budget
from modreg.distill._select import trimmed_rms
from modreg.errors import DistillError
from modreg.spec.expr import Dot, Norm, format_expression
from modreg.spec.manifest import Port
from modreg.spec.units import dimensionality, parse_unit

__all__ = ["Features", "OutputFit", "Point", "Search", "distill_output", "scalar_features"]

Array = np.ndarray[Any, Any]
Form = Literal["scalar", "constant", "parallel", "affine"]
CONSTANT_SPREAD = 1e-2  # rms(F - mean) / rms(F) below this: a constant vector
LOOSE_SPREAD = 1e-1  # no directional law fits: a constant still explains 99 % of rms(F)
PARALLEL_RESIDUAL = 5e-2  # rms(F - s*u) / rms(F) below this: parallel to u
SMALL_DIRECTION = 0.1  # rows with |u| below this fraction of rms|u| do not define s
EXACT_RESIDUAL = 1e-6


@dataclass(frozen=True)
class Features:
    """Scalar features of the inputs: values, units and the port expression each stands for."""

    names: list[str]
    units: list[str]
    values: Array  # rows x features
    exprs: dict[str, Any]  # feature name -> sympy expression over input ports

    def to_ports(self, expr: Any) -> Any:
        """An engine expression (over feature symbols) as an expression over input ports."""
        mapping = {sp.Symbol(n): self.exprs[n] for n in self.names}
        mapping |= {sp.Symbol(n, real=True): self.exprs[n] for n in self.names}
        return expr.xreplace(mapping)

    def evaluate(self, expr: Any) -> Array:
        """Values of an engine expression on every row."""
        env = {n: self.values[:, i] for i, n in enumerate(self.names)}
        return evaluate(expr, env, self.values.shape[0])


@dataclass(frozen=True)
class Point:
    """A Pareto point of one output, over input ports, scored on that output."""

    expr: Any
    complexity: int
    rmse: float

    @property
    def text(self) -> str:
        return format_expression(self.expr)


@dataclass(frozen=True)
class Search:
    """How to run the engine for one output."""

    time_budget: float
    seed: int
    workers: int
    progress: Callable[[str, float], None] | None = None
    oracle: Callable[[Array], Array] | None = None
    effort: float = 1.0
    noise: float = 0.0  # the teacher's error level for this output (0: exact data or unknown)
    fresh: tuple[Mapping[str, Array], Array] | None = None  # unseen inputs, teacher's output


@dataclass(frozen=True)
class OutputFit:
    """The law found for one output: ``offset + scale * direction`` (or a scalar ``scale``).

    ``scale`` is a sympy expression over input ports with numbers inline; ``offset`` a
    constant vector (or None); ``direction`` the vector input the output is parallel to.
    """

    port: str
    form: Form
    scale: Any | None
    offset: list[float] | None
    offset_name: str | None
    direction: str | None
    pareto: list[Point]
    chosen: int
    exact: bool
    timed_out: bool
    seconds: float
    rmse: float
    r2: float
    max_rel_error: float
    within_noise: bool = False  # inexact, but as close as the teacher is to its own law


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def vector_inputs(inputs: Mapping[str, Port]) -> dict[str, Port]:
    """The 1-D vector inputs (matrices have no scalar features here)."""
    return {n: p for n, p in inputs.items() if len(p.shape) == 1}


def scalar_features(inputs: Mapping[str, Port], arrays: Mapping[str, Array]) -> Features:
    """Scalar inputs, norms of vector inputs and dots of same-shape pairs, in port order."""
    taken = set(inputs)
    names, units, columns, exprs = [], [], [], {}
    symbol = {n: sp.Symbol(n, real=True) for n in inputs}
    for name, port in inputs.items():
        if port.shape == ():
            names.append(name)
            units.append(port.unit)
            columns.append(np.asarray(arrays[name], dtype=np.float64))
            exprs[name] = symbol[name]
    vectors = vector_inputs(inputs)
    for name, port in vectors.items():
        feature = _unique(f"norm_{name}", taken)
        names.append(feature)
        units.append(port.unit)
        columns.append(np.linalg.norm(arrays[name], axis=1))
        exprs[feature] = Norm(symbol[name])
    for (a, pa), (b, pb) in itertools.combinations(vectors.items(), 2):
        if pa.shape == pb.shape:
            feature = _unique(f"dot_{a}_{b}", taken)
            names.append(feature)
            units.append(f"({pa.unit})*({pb.unit})")
            columns.append(np.einsum("ij,ij->i", arrays[a], arrays[b]))
            exprs[feature] = Dot(symbol[a], symbol[b])
    if not names:
        raise DistillError("the inputs give no scalar features: add a scalar or vector input")
    return Features(names, units, np.stack(columns, axis=1), exprs)


def _rms(values: Array) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def _scores(pred: Array, y: Array) -> tuple[float, float, float]:
    """RMSE, R² and max relative error (floored like ``modreg check``) over all components."""
    from modreg.check._metrics import score

    return score("rmse", pred, y), score("r2", pred, y), score("max_rel", pred, y)


def _complexity(expr: Any) -> int:
    return sum(1 for _ in sp.preorder_traversal(expr))


def _run_engine(
    features: Features,
    rows: Array,
    target: Array,
    unit: str,
    search: Search,
    weights: Array | None = None,
    score: Callable[[Any], float] | None = None,
    scale: float | None = None,
    target_noise: float = 0.0,
) -> DistillResult:
    """The engine on the given rows; numeric warnings of its trial fits are expected noise.

    A target constant to rounding (linear drag has a constant ``s``) is answered here: the
    engine refuses constant targets, rightly for data, but here it is a law.
    """
    import warnings

    size = float(np.max(np.abs(target), initial=0.0))
    if len(target) and np.ptp(target) <= 1e-12 * size:
        return _constant_result(float(np.mean(target)))
    deadline = time.monotonic() + search.time_budget
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = distill_arrays(
            features.values[rows],
            target,
            features.names,
            units=[dimensionality(u) for u in features.units],
            target_unit=dimensionality(unit),
            time_budget=search_budget(search.time_budget, search.noise > 0),
            seed=search.seed,
            workers=search.workers,
            oracle=search.oracle,
            progress=search.progress,
            effort=search.effort,
            noise=target_noise,
        )
        return parsimonious(
            result,
            features.values[rows],
            target,
            features.names,
            weights,
            score,
            scale,
            search.noise,
            deadline,
        )


def _constant_result(value: float) -> DistillResult:
    from modreg.distill._engine import ParetoPoint

    expr = sp.Float(value)
    text = format_expression(expr)
    point = ParetoPoint(text, 1, 0.0, expr)
    return DistillResult(text, expr, 1, 0.0, 1.0, 0.0, True, [point], 0.0, "constant")


def _chosen_index(result: DistillResult) -> int:
    for i, point in enumerate(result.pareto):
        if point.expression == result.expression:
            return i
    return len(result.pareto) - 1


def distill_output(
    name: str,
    port: Port,
    inputs: Mapping[str, Port],
    arrays: Mapping[str, Array],
    y: Array,
    search: Search,
) -> OutputFit:
    """Find the law of one output port from samples of the inputs (``arrays``) and ``y``.

    Raises:
        DistillError: the output is a matrix, or a vector that is neither constant nor
            (constant plus) parallel to a vector input; or the engine refuses the data.
    """
    features = scalar_features(inputs, arrays)
    if port.shape == ():
        return _scalar(name, port, inputs, features, y, search)
    if len(port.shape) > 1:
        raise DistillError(
            f"output {name!r} has shape {list(port.shape)}: only scalar and vector outputs "
            "can be distilled; split it into vector ports"
        )
    offset_name = _unique(f"{name}0", {*inputs, name})
    constant = _constant(name, offset_name, y)
    if constant is not None:
        return constant
    try:
        return _directional(name, offset_name, port, inputs, arrays, features, y, search)
    except DistillError:
        # A network teacher's constant output wobbles by a few percent: when no directional
        # law fits, the constant is the parsimonious answer (flagged inexact by its spread).
        loose = _constant(name, offset_name, y, LOOSE_SPREAD)
        if loose is None:
            raise
        return loose


def _fresh_score(inputs: Mapping[str, Port], search: Search) -> Callable[[Any], float] | None:
    """RMSE on draws the search never saw, when a teacher gave them (trimmed: the worst
    :data:`._select.TRIM` of them, where a teacher errs most, set aside)."""
    if search.fresh is None:
        return None
    fresh_in, fresh_y = search.fresh
    fresh = scalar_features(inputs, fresh_in)

    def score(expr: Any) -> float:
        with np.errstate(all="ignore"):
            return trimmed_rms(fresh.evaluate(expr) - fresh_y)

    return score


def _range_probe(inputs: Mapping[str, Port]) -> Callable[[Any], bool] | None:
    """Whether a law is finite at the points publish checks: the declared ranges' centre and
    seeded draws (``spec._finite``). A law that is not cannot be chosen: it would be refused
    at publish (``log(norm(v))`` with 0 inside the range of ``v``). None without ranges."""
    from modreg.spec._finite import _samples

    ranges = {n: p.range for n, p in inputs.items()}
    if not all(ranges.values()):
        return None
    arrays, _ = _samples(ranges, {n: tuple(p.shape) for n, p in inputs.items()})
    probe = scalar_features(inputs, arrays)

    def defined(expr: Any) -> bool:
        with np.errstate(all="ignore"):
            return bool(np.isfinite(probe.evaluate(expr)).all())

    return defined


def _defined_only(
    score: Callable[[Any], float] | None, probe: Callable[[Any], bool] | None
) -> Callable[[Any], float] | None:
    """``score``, but infinite for laws the probe finds undefined."""
    if probe is None or score is None:
        return score

    def guarded(expr: Any) -> float:
        return score(expr) if probe(expr) else math.inf

    return guarded


def _scalar(
    name: str,
    port: Port,
    inputs: Mapping[str, Port],
    features: Features,
    y: Array,
    search: Search,
) -> OutputFit:
    rows = np.arange(len(y))
    score = _defined_only(_fresh_score(inputs, search), _range_probe(inputs))
    result = _run_engine(
        features, rows, y, port.unit, search, score=score, target_noise=search.noise
    )
    points = [Point(features.to_ports(p.sympy_expr), p.complexity, p.rmse) for p in result.pareto]
    chosen = _chosen_index(result)
    return OutputFit(
        port=name,
        form="scalar",
        scale=points[chosen].expr,
        offset=None,
        offset_name=None,
        direction=None,
        pareto=points,
        chosen=chosen,
        exact=result.exact,
        timed_out=result.timed_out,
        seconds=result.seconds,
        rmse=result.rmse,
        r2=result.r2,
        max_rel_error=result.max_rel_error,
        within_noise=result.within_noise,
    )


def snap_vector(values: Array, noise: float) -> list[float]:
    """Components within the noise of zero become 0; the others are rounded to the noise.

    ``noise`` is the size of the error the values carry (at least float32 resolution), so
    rounding to its decimal changes no value by more than half of it.

    Example:
        >>> snap_vector(np.array([2e-4, -1e-4, -9.8100004]), noise=1e-3)
        [0.0, 0.0, -9.81]
    """
    size = float(np.linalg.norm(values))
    floor = max(noise, float(np.finfo(np.float32).eps) * size, np.finfo(np.float64).tiny)
    decimals = -math.floor(math.log10(floor))
    snapped = []
    for value in values:
        keep = abs(value) > max(3 * noise, 1e-3 * size)
        snapped.append(round(float(value), decimals) + 0.0 if keep else 0.0)
    return snapped


def _constant(
    name: str, offset_name: str, y: Array, spread_limit: float = CONSTANT_SPREAD
) -> OutputFit | None:
    """Case (a): a constant vector, when the output barely varies."""
    mean = y.mean(axis=0)
    spread = _rms(y - mean) / max(_rms(y), np.finfo(np.float64).tiny)
    if spread >= spread_limit:
        return None
    start = time.monotonic()
    value = snap_vector(mean, float(np.max(y.std(axis=0))))
    pred = np.broadcast_to(np.asarray(value), y.shape)
    rmse, r2, max_rel = _scores(pred, y)
    point = Point(sp.Symbol(offset_name, real=True), 1, rmse)
    return OutputFit(
        port=name,
        form="constant",
        scale=None,
        offset=value,
        offset_name=offset_name,
        direction=None,
        pareto=[point],
        chosen=0,
        exact=spread < EXACT_RESIDUAL,
        timed_out=False,
        seconds=time.monotonic() - start,
        rmse=rmse,
        r2=r2,
        max_rel_error=max_rel,
    )


@dataclass(frozen=True)
class _Direction:
    """A candidate decomposition ``y = offset + s * u`` on the rows that define ``s``."""

    name: str
    rows: Array
    s: Array
    offset: Array | None
    residual: float


def _parallel(y: Array, u: Array, rows: Array, offset: Array | None, name: str) -> _Direction:
    shifted = y[rows] - (0.0 if offset is None else offset)
    uu = np.einsum("ij,ij->i", u[rows], u[rows])
    s = np.einsum("ij,ij->i", shifted, u[rows]) / uu
    residual = _rms(shifted - s[:, None] * u[rows]) / max(_rms(y[rows]), 1e-300)
    return _Direction(name, rows, s, offset, residual)


def _affine_offset(y: Array, u: Array) -> Array:
    """The ``c`` minimising sum |P_i (y_i - c)|², P_i the projection orthogonal to u_i."""
    unit = u / np.linalg.norm(u, axis=1, keepdims=True)
    eye = np.eye(u.shape[1])
    projections = eye[None, :, :] - unit[:, :, None] * unit[:, None, :]
    lhs = projections.sum(axis=0)
    rhs = np.einsum("nij,nj->i", projections, y)
    solution, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    return np.asarray(solution, dtype=np.float64)


def _candidates(
    port: Port, inputs: Mapping[str, Port], arrays: Mapping[str, Array], y: Array
) -> list[_Direction]:
    """Every parallel and affine decomposition over same-shape vector inputs."""
    found = []
    for name, other in vector_inputs(inputs).items():
        if other.shape != port.shape:
            continue
        u = np.asarray(arrays[name], dtype=np.float64)
        length = np.linalg.norm(u, axis=1)
        rows = np.flatnonzero(length >= SMALL_DIRECTION * _rms(length))
        if len(rows) == 0:
            continue
        found.append(_parallel(y, u, rows, None, name))
        offset = _affine_offset(y[rows], u[rows])
        noise = _parallel(y, u, rows, offset, name).residual * _rms(y[rows])
        found.append(_parallel(y, u, rows, np.asarray(snap_vector(offset, noise)), name))
    return found


def _directional(
    name: str,
    offset_name: str,
    port: Port,
    inputs: Mapping[str, Port],
    arrays: Mapping[str, Array],
    features: Features,
    y: Array,
    search: Search,
) -> OutputFit:
    """Cases (b) and (c): the first good decomposition, parallel before constant-plus-parallel."""
    candidates = _candidates(port, inputs, arrays, y)
    good = [c for c in candidates if c.residual < PARALLEL_RESIDUAL]
    if not good:
        best = min((c.residual for c in candidates), default=math.inf)
        raise DistillError(
            f"output {name!r} is neither constant nor (a constant plus) parallel to a vector "
            f"input of shape {list(port.shape)} (best residual {best:.1%}): distill a "
            "network whose vector output follows one of its vector inputs, or split it"
        )
    pick = next((c for c in good if c.offset is None), good[0])
    unit = str(parse_unit(port.unit) / parse_unit(inputs[pick.name].unit))
    u = np.asarray(arrays[pick.name], dtype=np.float64)
    weights = np.einsum("ij,ij->i", u[pick.rows], u[pick.rows])  # score s by the error in y
    offset = np.zeros(port.shape) if pick.offset is None else pick.offset

    probe = _range_probe(inputs)

    def vector_error(expr: Any) -> float:  # the whole output, on every sample
        if probe is not None and not probe(expr):
            return math.inf  # undefined somewhere the module promises to work
        with np.errstate(all="ignore"):
            return _rms(offset + features.evaluate(expr)[:, None] * u - y)

    # the teacher's error in F, carried to s = (F.u)/(u.u) on these rows
    s_noise = search.noise / max(float(np.sqrt(np.mean(weights))), 1e-300)
    result = _run_engine(
        features, pick.rows, pick.s, unit, search, weights, vector_error, _rms(y), s_noise
    )
    offset = np.zeros(port.shape) if pick.offset is None else pick.offset
    direction = sp.Symbol(pick.name, real=True)
    shift = 0 if pick.offset is None else sp.Symbol(offset_name, real=True)

    def point(expr: Any) -> Point:
        full = shift + features.to_ports(expr) * direction
        pred = offset + features.evaluate(expr)[:, None] * u
        return Point(full, _complexity(full), _rms(pred - y))

    points = [point(p.sympy_expr) for p in result.pareto]
    pred = offset + features.evaluate(result.sympy_expr)[:, None] * u
    rmse, r2, max_rel = _scores(pred, y)
    return OutputFit(
        port=name,
        form="parallel" if pick.offset is None else "affine",
        scale=features.to_ports(result.sympy_expr),
        offset=None if pick.offset is None else [float(v) for v in pick.offset],
        offset_name=None if pick.offset is None else offset_name,
        direction=pick.name,
        pareto=points,
        chosen=_chosen_index(result),
        exact=result.exact and pick.residual < EXACT_RESIDUAL,
        timed_out=result.timed_out,
        seconds=result.seconds,
        rmse=rmse,
        r2=r2,
        max_rel_error=max_rel,
        within_noise=result.within_noise,
    )
