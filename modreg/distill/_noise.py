"""Teacher-aware exactness: the teacher's error level, and laws settled to it.

A network teacher is never exact: it reproduces its law to some error sigma (1e-3 of the
output is typical). Constants fitted to it carry that error (``1.00003147762*omega/c``) and
the search adds terms that model it (``... + 5.82e-05``). Both are noise, so once sigma is
known a law is *settled*:

1. additive terms, and factors that are powers of non-trivial bases, whose removal keeps
   the error within ``max(error, sigma)`` are dropped, smallest contribution first;
2. each float constant is replaced by the simplest exact number (a small rational times
   pi, sqrt(2), e, ...; see :mod:`._snap`) within the relative precision the teacher
   supports, or else rounded to the digits it supports, whenever the error stays within
   ``max(error, sigma)``.

sigma comes from the teacher's recorded metrics when it has them (``rmse_<port>``,
``val_rmse_<port>``, ``test_rmse_<port>`` or plain ``rmse`` for a one-output network), and
is never below float32 resolution of the output (the teacher computes in float32).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import sympy

from modreg.distill._expr import complexity
from modreg.distill._snap import snap_constant

__all__ = ["FLOAT32_FLOOR", "recorded_noise", "settle"]

FLOAT32_FLOOR = 4 * float(np.finfo(np.float32).eps)
MAX_SNAP_NODES = 5  # 1/(4*pi) is 5 nodes; 17*exp(-1)/21 fits loose tolerances by accident
MAX_SNAP_INT = 12  # numerators and denominators of snapped rationals
_METRIC_KEYS = ("rmse_{port}", "val_rmse_{port}", "test_rmse_{port}")
Score = Callable[[sympy.Expr], float]


def recorded_noise(metrics: Mapping[str, float], port: str, single_output: bool) -> float | None:
    """The teacher's own RMSE for ``port`` as its manifest records it, if it does."""
    keys = [k.format(port=port) for k in _METRIC_KEYS] + (["rmse"] if single_output else [])
    for key in keys:
        value = metrics.get(key)
        if value is not None and math.isfinite(value) and value > 0:
            return float(value)
    return None


def _within(score: float, bound: float) -> bool:
    return math.isfinite(score) and score <= bound


def _drop_terms(expr: sympy.Expr, score: Score, bound: float) -> sympy.Expr:
    """Remove additive terms one at a time while the error stays within ``bound``."""
    changed = True
    while changed and isinstance(expr, sympy.Add):
        changed = False
        trials = []
        for term in expr.args:
            rest = expr - term
            trials.append((score(rest), sympy.count_ops(term), rest))
        trials.sort(key=lambda t: (t[0], -t[1]))
        best_score, _, rest = trials[0]
        if _within(best_score, bound) and rest.free_symbols:
            expr, changed = rest, True
    return expr


def _drop_factors(expr: sympy.Expr, score: Score, bound: float) -> sympy.Expr:
    """Replace factors by 1 (``abs(1 - 3*x)**0.0006``, ``x**0.01``) while the error stays
    within bound (a real factor such as ``r**-2`` never does)."""
    changed = True
    while changed:
        changed = False
        factors = [f for f in expr.atoms(sympy.Pow) if f.exp.is_Float or f.exp.is_Rational]
        trials = []
        for factor in factors:
            if not factor.free_symbols:
                continue
            rest = expr.xreplace({factor: sympy.Integer(1)})
            if rest.free_symbols:
                trials.append((score(rest), -sympy.count_ops(factor), str(factor), rest))
        trials.sort(key=lambda t: t[:3])
        if trials and _within(trials[0][0], bound):
            expr, changed = trials[0][3], True
    return expr


def _simple(number: sympy.Expr) -> bool:
    """Simple enough to be a law's constant at a loose tolerance: 3/4*pi, not 157/16."""
    rationals = [r for r in number.atoms(sympy.Rational) if not r.is_Integer or abs(r) > 1]
    small = all(abs(r.p) <= MAX_SNAP_INT and r.q <= MAX_SNAP_INT for r in rationals)
    return small and complexity(number) <= MAX_SNAP_NODES


def _choices(value: float, rel: float) -> list[sympy.Expr]:
    """Replacements for a constant, simplest first: exact numbers, then fewer digits."""
    out: list[sympy.Expr] = []
    tol = rel
    while tol >= 1e-9:  # the simplest number at each precision: 2/5, then 1/sqrt(2*pi), ...
        snapped = snap_constant(value, rel_tol=tol)
        if snapped is not None and _simple(snapped) and snapped not in out:
            out.append(snapped)
        tol /= 10
    seen = {value}
    for digits in range(1, 16):
        rounded = float(f"{value:.{digits}g}")
        if rounded not in seen:
            seen.add(rounded)
            exact = rounded.is_integer() and abs(rounded) < 1e15
            out.append(sympy.Integer(int(rounded)) if exact else sympy.Float(rounded, 15))
    return out


def _snap_constants(expr: sympy.Expr, score: Score, bound: float, rel: float) -> sympy.Expr:
    """Replace each float by its simplest acceptable choice (largest constants first)."""
    floats = sorted(expr.atoms(sympy.Float), key=lambda f: -abs(float(f)))
    for number in floats:
        if number not in expr.atoms(sympy.Float):
            continue
        for choice in _choices(float(number), rel):
            trial = expr.xreplace({number: choice})
            if _within(score(trial), bound):
                expr = trial
                break
    return expr


def settle(expr: sympy.Expr, score: Score, sigma: float, size: float) -> sympy.Expr:
    """``expr`` without the terms and digits that only model noise of level ``sigma``.

    Args:
        expr: the law (numbers inline).
        score: its RMSE against the teacher (or data) in the output's units.
        sigma: the teacher's error level, same units.
        size: the RMS of the output, so sigma / size is the relative precision supported.
    """
    if sigma <= 0 or not math.isfinite(sigma):
        return expr
    start = score(expr)
    if not math.isfinite(start):
        return expr
    bound = max(start, sigma)
    rel = min(max(sigma / max(size, 1e-300), FLOAT32_FLOOR), 0.05)
    expr = _drop_factors(_drop_terms(expr, score, bound), score, bound)
    return _snap_constants(expr, score, bound, rel)
