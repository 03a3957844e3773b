"""The data of one distillation problem and its candidate equations.

A :class:`Workspace` is the problem seen through one change of variables: y = P(x) * z with a
prefactor P and working variables (pi groups or the raw inputs). Fitting families look for z
as a function of the working variables; every candidate they return is a sympy expression in
the raw input names, scored here on all the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy
from numpy.typing import NDArray

from modreg.distill._expr import complexity, evaluate, is_finite_expr
from modreg.distill._snap import float_constant, snap_constant

__all__ = ["Candidate", "Problem", "Workspace", "score_candidate"]

Array = NDArray[np.float64]
EXACT_REL = 1e-8


@dataclass
class Problem:
    """Raw data plus a fixed row subsample used for fast column fitting."""

    x: Array
    y: Array
    names: list[str]
    sub: NDArray[np.int64]
    noise: float = 0.0  # the RMSE y itself carries (a network teacher's error); 0: exact data
    symbols: list[sympy.Symbol] = field(init=False)
    env: dict[str, Array] = field(init=False)

    def __post_init__(self) -> None:
        self.symbols = [sympy.Symbol(n) for n in self.names]
        self.env = {n: self.x[:, i] for i, n in enumerate(self.names)}


@dataclass
class Workspace:
    """One view of the problem: y = prefactor * z(w_1, ..., w_k)."""

    label: str
    prefactor: sympy.Expr
    pref_values: Array  # on all rows
    w_exprs: list[sympy.Expr]
    w_values: Array  # rows x k, all rows

    def z(self, problem: Problem) -> Array:
        with np.errstate(all="ignore"):
            return problem.y / self.pref_values


@dataclass(frozen=True)
class Candidate:
    """A scored equation."""

    expr: sympy.Expr
    complexity: int
    rmse: float
    max_rel: float
    r2: float
    source: str

    @property
    def exact(self) -> bool:
        return self.max_rel < EXACT_REL


def _errors(pred: Array, y: Array) -> tuple[float, float, float]:
    if not np.all(np.isfinite(pred)):
        return math.inf, math.inf, -math.inf
    err = pred - y
    with np.errstate(over="ignore"):  # a wild candidate's error overflows to inf: refused
        rmse = float(np.sqrt(np.mean(err**2)))
    floor = 1e-9 * float(np.sqrt(np.mean(y**2)))
    max_rel = float(np.max(np.abs(err) / np.maximum(np.abs(y), floor)))
    var = float(np.var(y))
    r2 = 1.0 - rmse**2 / var if var > 0 else (1.0 if rmse == 0 else -math.inf)
    return rmse, max_rel, r2


def score_candidate(expr: sympy.Expr, problem: Problem, source: str) -> Candidate | None:
    """Score ``expr`` on all rows; None when it is not finite everywhere."""
    if not is_finite_expr(expr) or expr.free_symbols - set(problem.symbols):
        return None
    pred = evaluate(expr, problem.env, problem.y.shape[0])
    rmse, max_rel, r2 = _errors(pred, problem.y)
    if not math.isfinite(rmse):
        return None
    return Candidate(expr, complexity(expr), rmse, max_rel, r2, source)


def with_scale(shape: sympy.Expr, problem: Problem, source: str) -> list[Candidate]:
    """Fit y = C * shape by least squares; return the snapped-C and float-C candidates."""
    h = evaluate(shape, problem.env, problem.y.shape[0])
    if not np.all(np.isfinite(h)):
        return []
    denom = float(h @ h)
    if denom == 0.0 or not math.isfinite(denom):
        return []
    c = float(h @ problem.y) / denom
    if not math.isfinite(c) or c == 0.0:
        return []
    out: list[Candidate] = []
    snapped = snap_constant(c, rel_tol=1e-6)
    for const in ([snapped] if snapped is not None else []) + [float_constant(c)]:
        cand = score_candidate(const * shape, problem, source)
        if cand is not None:
            out.append(cand)
            if cand.exact:
                break
    return out
