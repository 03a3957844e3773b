"""Parsimony for inexact targets: a trained network is a law plus its own systematic error.

The search keeps only fits that are exact to ~1e-5, plus its most accurate inexact fits,
which on a network teacher are many-term curves that model the network's own error. Here
simple power laws ``c * x_j**p`` and ``c * x_j**p * x_k**q`` (exponents on a grid of halves
in [-2, 3]; ``c`` by weighted least squares) join the Pareto front, every point is settled
to the teacher's error level (terms below it dropped, constants snapped or rounded to the
digits it supports; :mod:`._noise`), scored by the same RMSE, and chosen by the one rule of
:mod:`._select`. ``weights`` carry the target into the space the user sees: a vector output
``F = s * u`` is scored with ``|u|**2``, so the RMSE is that of ``F``, not of ``s``.
Exact results are left alone: there the simplest *exact* point is already chosen.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import NDArray

from modreg.distill._engine import DistillResult, ParetoPoint
from modreg.distill._expr import complexity, evaluate, is_finite_expr, to_text
from modreg.distill._noise import law_complexity, settle
from modreg.distill._removable import remove_singularities
from modreg.distill._select import MEETS, meets, select
from modreg.spec.expr import format_expression

__all__ = ["SETTLE_SHARE", "parsimonious", "search_budget"]

Array = NDArray[np.float64]
SETTLE_SHARE = 0.2  # of a noisy target's time budget, kept for settling after the search
SETTLE_SLACK = 1.05  # noise level unknown: a settled law may be 5 % worse than the float one
EXPONENTS = tuple(p / 2 for p in range(-4, 7) if p)


def _power_laws(x: Array, y: Array, w: Array, names: list[str]) -> list[sp.Expr]:
    """The best ``c * prod(x_j**p_j)`` for each feature and each pair of positive features."""
    positive = [j for j in range(x.shape[1]) if np.all(x[:, j] > 0)]
    laws: list[sp.Expr] = []
    for size in (1, 2):
        for cols in itertools.combinations(positive, size):
            best: tuple[float, float, tuple[float, ...]] | None = None
            for powers in itertools.product(EXPONENTS, repeat=size):
                with np.errstate(all="ignore"):
                    f = np.prod([x[:, j] ** p for j, p in zip(cols, powers, strict=True)], axis=0)
                    c = float(np.sum(w * f * y) / np.sum(w * f * f))
                    loss = float(np.sum(w * (y - c * f) ** 2))
                if np.isfinite(loss) and (best is None or loss < best[0]):
                    best = (loss, c, powers)
            if best is not None:
                _, c, powers = best
                factors = [
                    sp.Symbol(names[j], real=True) ** sp.nsimplify(p)
                    for j, p in zip(cols, powers, strict=True)
                ]
                laws.append(sp.Float(c, 8) * sp.Mul(*factors))
    return laws


Score = Callable[[sp.Expr], float]
ROUND_TO = (2, 3)  # exponents are rounded to the nearest half or third
REFIT_ROWS, REFIT_FLOATS = 1000, 8  # constants are refitted on this many rows, up to this many


def _simple_exponent(value: float) -> sp.Rational:
    """The nearest half, or third when that is much nearer (0.98 -> 1, 0.34 -> 1/3)."""
    options = [sp.Rational(round(value * q), q) for q in ROUND_TO]
    return min(options, key=lambda r: (abs(float(r) - value) + 0.02 * (r.q > 2), r.q))


def _tidied(expr: sp.Expr) -> sp.Expr:
    """A settled law with its common factors pulled out, when that is simpler:
    ``m*(3*u**2/2 + 3*v**2/2)/3`` is ``m*(u**2 + v**2)/2`` (laws with floats are left)."""
    if expr.atoms(sp.Float):
        return expr
    factored = sp.factor_terms(expr)
    return factored if law_complexity(factored) < law_complexity(expr) else expr


def _refit(expr: sp.Expr, x: Array, y: Array, w: Array, names: list[str]) -> sp.Expr | None:
    """``expr`` with all its fitted numbers refitted jointly (nonlinear least squares).

    The search fits numbers family by family, often on a transformed target, so a law's
    constants can sit off their best joint values (``0.125*c**2*k/r**2`` for
    ``3/(8*pi)*...``); refitted, they snap. On a seeded subsample of :data:`REFIT_ROWS`
    rows; None when nothing improves.
    """
    from scipy.optimize import least_squares

    floats = sorted(expr.atoms(sp.Float), key=str)
    if not 0 < len(floats) <= REFIT_FLOATS:
        return None
    params = [sp.Symbol(f"__refit{i}") for i in range(len(floats))]
    template = expr.xreplace(dict(zip(floats, params, strict=True)))
    rows = np.random.default_rng(0).permutation(len(y))[:REFIT_ROWS]
    env: dict[str, Any] = {name: x[rows, j] for j, name in enumerate(names)}
    root_w, target = np.sqrt(w[rows]), y[rows]

    def residual(values: Array) -> Array:
        env.update({p.name: float(v) for p, v in zip(params, values, strict=True)})
        with np.errstate(all="ignore"):
            out = root_w * (evaluate(template, env, len(rows)) - target)
        return np.nan_to_num(out, nan=1e30, posinf=1e30, neginf=-1e30)

    start = np.array([float(f) for f in floats])
    try:
        fit = least_squares(residual, start, max_nfev=20 * (len(floats) + 1))
    except (ValueError, FloatingPointError):
        return None
    if not (
        np.all(np.isfinite(fit.x)) and fit.cost < 0.5 * float(residual(start) @ residual(start))
    ):
        return None
    refitted = template.xreplace(
        {p: sp.Float(float(v), 15) for p, v in zip(params, fit.x, strict=True)}
    )
    return refitted if is_finite_expr(refitted) else None


def _rounded_powers(
    expr: sp.Expr, x: Array, y: Array, w: Array, names: list[str]
) -> sp.Expr | None:
    """``expr`` with fitted exponents rounded to simple ones and its scale refitted.

    A teacher's error bends fitted exponents (``q1**(10/11)*abs(2*q1 - 1)**0.034``): the
    rounded law ``c*q1`` is a candidate of its own, its scale ``c`` fitted by weighted
    least squares, then settled like every other point.
    """

    def rough(e: sp.Expr) -> bool:
        return bool(e.is_Pow and e.exp.is_number and e.free_symbols) and (
            e.exp.is_Float or (e.exp.is_Rational and e.exp.q > max(ROUND_TO))
        )

    rounded = expr.replace(rough, lambda e: e.base ** _simple_exponent(float(e.exp)))
    if rounded == expr or not rounded.free_symbols or not is_finite_expr(rounded):
        return None
    env = {name: x[:, j] for j, name in enumerate(names)}
    with np.errstate(all="ignore"):
        try:
            f = evaluate(rounded, env, len(y))
        except ValueError:  # rounding made a node the evaluator does not know (cot)
            return None
        c = float(np.sum(w * f * y) / np.sum(w * f * f))
    if not (np.all(np.isfinite(f)) and np.isfinite(c) and c != 0):
        return None
    return sp.Float(c, 15) * rounded


def search_budget(time_budget: float, noisy: bool) -> float:
    """The search's part of a time budget. A noisy target's front is settled after the
    search (rounded exponents, joint refits, snaps): a search that ran to the cap would
    leave that no time, and the hardest laws would keep their fitted floats."""
    return time_budget * (1 - SETTLE_SHARE) if noisy else time_budget


def parsimonious(
    result: DistillResult,
    x: Array,
    y: Array,
    names: list[str],
    weights: Array | None = None,
    score: Score | None = None,
    scale: float | None = None,
    sigma: float = 0.0,
    deadline: float | None = None,
) -> DistillResult:
    """Add simple power laws to an inexact result's front, settle each point to the noise
    level and choose by the one selection rule (:mod:`._select`).

    ``score`` (default: weighted RMSE on ``x, y``) rates a candidate where the user sees
    it: for a network teacher, on fresh draws the search never saw; for a vector output,
    the error of the whole vector on every sample. ``scale`` is the RMS of the output in
    that space (default: of ``y``); ``sigma`` the teacher's error level there (0: unknown).
    ``deadline`` (``time.monotonic()``) is the search's outer cap: past it, only the
    engine's own front is settled, the rest is skipped and the result says it timed out.
    """
    if result.exact:
        return _without_singularities(result)
    w = np.ones_like(y) if weights is None else weights
    env = {name: x[:, j] for j, name in enumerate(names)}

    def weighted(expr: sp.Expr) -> float:
        with np.errstate(all="ignore"):
            err = evaluate(expr, env, len(y)) - y
            return float(np.sqrt(np.sum(w * err**2) / np.sum(w)))

    rate = score or weighted
    size = float(np.sqrt(np.mean(y**2))) if scale is None else scale

    def scored(expr: sp.Expr) -> ParetoPoint:
        expr = remove_singularities(expr)  # finite where publish probes (a 0/0 is not)
        first = rate(expr)
        if np.isfinite(first):
            allowed = MEETS * sigma if sigma > 0 else math.sqrt(SETTLE_SLACK**2 - 1) * first
            expr = settle(expr, rate, allowed, size)
            expr = _tidied(expr)
        rmse = rate(expr)
        text = format_expression(expr)
        return ParetoPoint(text, law_complexity(expr), rmse if np.isfinite(rmse) else np.inf, expr)

    def late() -> bool:
        return deadline is not None and time.monotonic() > deadline

    front = [p.sympy_expr for p in result.pareto]
    laws = front + result.pool + _power_laws(x, y, w, names)
    laws += [r for law in laws if (r := _rounded_powers(law, x, y, w, names)) is not None]
    laws += [r for law in laws if not late() and (r := _refit(law, x, y, w, names)) is not None]
    points = [scored(law) for law in front]  # the engine's own front is settled in any case
    cut = False
    for law in laws[len(front) :]:
        if late():
            cut = True
            break
        points.append(scored(law))
    finite = [p for p in points if np.isfinite(p.rmse)]
    if not finite:
        return result
    front = _front(finite)
    chosen = front[select(front, sigma)]
    values = evaluate(chosen.sympy_expr, env, len(y))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    with np.errstate(all="ignore"):
        r2 = 1.0 - float(np.sum((values - y) ** 2)) / ss_tot if ss_tot > 0 else 0.0
        rel = float(np.max(np.abs(values - y) / np.maximum(np.abs(y), 1e-12)))
    return replace(
        result,
        expression=chosen.expression,
        sympy_expr=chosen.sympy_expr,
        complexity=chosen.complexity,
        rmse=float(np.sqrt(np.mean((values - y) ** 2))),
        r2=r2,
        max_rel_error=rel,
        pareto=front,
        source=result.source + "+parsimony",
        within_noise=meets(chosen.rmse, sigma),
        timed_out=result.timed_out or cut,
    )


def _without_singularities(result: DistillResult) -> DistillResult:
    """An exact result with its 0/0 shapes written with ``sinc`` (:mod:`._removable`): the
    same function, finite where publish evaluates it."""
    expr = remove_singularities(result.sympy_expr)
    if expr == result.sympy_expr:
        return result
    text, size = to_text(expr), complexity(expr)
    pareto = [
        ParetoPoint(text, size, p.rmse, expr) if p.sympy_expr == result.sympy_expr else p
        for p in result.pareto
    ]
    return replace(result, expression=text, sympy_expr=expr, complexity=size, pareto=pareto)


def _front(points: list[ParetoPoint]) -> list[ParetoPoint]:
    """The non-dominated points: each is more accurate than every simpler one."""
    front: list[ParetoPoint] = []
    for point in sorted(points, key=lambda p: (p.complexity, p.rmse)):
        if not front or point.rmse < front[-1].rmse:
            front.append(point)
    return front
