"""Teacher-aware exactness: the teacher's error level, and laws settled to it.

A network teacher is never exact: it reproduces its law to some error sigma (1e-3 of the
output is typical). Constants fitted to it carry that error (``1.00003147762*omega/c``) and
the search adds terms that model it (``... + 5.82e-05``). Both are noise, so once sigma is
known a law is *settled*:

1. additive terms, and factors that are powers of non-trivial bases or exponentials of
   fitted arguments, whose removal adds at most sigma of error (in quadrature) are
   dropped, smallest contribution first;
2. each float constant is replaced by the cheapest exact number by a physics prior (a
   small rational times a power of pi, sqrt(2), e, ...; :func:`._snap.snap_simple`) within
   the relative precision the teacher supports, or else rounded to the digits it
   supports, whenever that adds at most sigma of error.

sigma comes from the teacher's recorded metrics when it has them (``rmse_<port>``,
``val_rmse_<port>``, ``test_rmse_<port>`` or plain ``rmse`` for a one-output network), and
is never below float32 resolution of the output (the teacher computes in float32).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import sympy

from modreg.distill._expr import is_finite_expr
from modreg.distill._select import CHEAP_COST, FLOAT_COST
from modreg.distill._snap import MAX_COST, snap_simple

__all__ = ["FLOAT32_FLOOR", "law_complexity", "merge_numbers", "recorded_noise", "settle"]

FLOAT32_FLOOR = 4 * float(np.finfo(np.float32).eps)
SNAP_WIDEN = 10  # exact numbers are sought this much beyond the relative precision: the
# error check decides (an inner constant, 0.993 in 1/sqrt(1 - 0.993*x**2), moves the law less)
ROUND_SHARE = 10  # a rounded constant moves by at most a tenth of the supported precision
_METRIC_KEYS = ("rmse_{port}", "val_rmse_{port}", "test_rmse_{port}")
Score = Callable[[sympy.Expr], float]


def _constant_cost(number: sympy.Expr) -> int:
    """1 for a cheap exact number, 2 for a dearer one, :data:`FLOAT_COST` for the rest."""
    value = float(number)
    if value == 0 or snap_simple(value, 1e-12, CHEAP_COST) is not None:
        return 1
    return 2 if snap_simple(value, 1e-12, math.inf) is not None else FLOAT_COST


def law_complexity(expr: sympy.Expr) -> int:
    """Complexity for inexact targets, where fitted numbers are what settling removes.

    Like a node count, but the numeric factors (or terms) of a product (or sum) count as
    one constant, whose cost is 1 when it is a cheap exact number by the prior of
    :mod:`._snap`, 2 for a dearer exact one and :data:`FLOAT_COST` for a fitted float:
    ``q1/(4*pi*epsilon*r**2)`` (9) is simpler than ``0.0792*q1/(epsilon*r**2)`` (11).
    """
    if not expr.free_symbols:
        return _constant_cost(expr)
    if not expr.args:
        return 1
    numeric = [a for a in expr.args if not a.free_symbols]
    rest = [a for a in expr.args if a.free_symbols]
    total = 1 + sum(law_complexity(a) for a in rest)
    if numeric:
        joined = sympy.Add(*numeric) if isinstance(expr, sympy.Add) else sympy.Mul(*numeric)
        total += _constant_cost(joined)
    return total


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


def _finite_only(score: Score) -> Score:
    """``score``, infinite for a trial that is not a real finite law (a snap can make
    ``(x - 1)**(1/2)`` of a negative number, or ``1/0``)."""

    def safe(expr: sympy.Expr) -> float:
        try:
            return score(expr) if is_finite_expr(expr) else math.inf
        except ValueError:  # a node the evaluator does not know (cot from 1/tan)
            return math.inf

    return safe


def merge_numbers(expr: sympy.Expr) -> sympy.Expr:
    """The numeric factors of each product (terms of each sum) as one float where any of
    them is a float: ``5.6047*G/pi**(3/2)`` becomes ``1.0066*G``, so snapping sees the whole
    constant (and makes it 1) instead of a float beside an exact factor."""
    if not expr.args:
        return expr
    args = [merge_numbers(a) for a in expr.args]
    node = expr.func(*args) if args != list(expr.args) else expr
    if isinstance(node, (sympy.Mul, sympy.Add)):
        numeric = [a for a in node.args if not a.free_symbols]
        if len(numeric) > 1 and any(a.has(sympy.Float) for a in numeric):
            rest = [a for a in node.args if a.free_symbols]
            value = sympy.Float(float(node.func(*numeric)), 15)
            return node.func(value, *rest)
    return node


def _scaled_sums(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each fitted sum's smallest coefficient factored out (:func:`_common_scale`)
    and merged into the numbers outside it."""
    if not expr.args:
        return expr
    args = [_scaled_sums(a) for a in expr.args]
    node = expr.func(*args) if args != list(expr.args) else expr
    return _common_scale(node) if isinstance(node, sympy.Add) else node


def _common_scale(total: sympy.Expr) -> sympy.Expr:
    """A fitted sum with its smallest coefficient factored out: the scale of
    ``0.2954*x**2 + 0.2954*y**2 + 0.29605*z**2`` joins the numbers outside it, and the
    terms keep ratios (1, 1, 1.0022) that snap together, where each coefficient alone
    would snap to its own number (``sqrt(pi)/6``)."""
    if not total.has(sympy.Float):
        return total
    terms = [t.as_independent(*t.free_symbols, as_Add=False) for t in total.args]
    scales = [abs(float(c)) for c, rest in terms if rest.free_symbols and c != 0]
    scale = min(scales, default=1.0)
    if len(scales) < 2 or scale == 1:
        return total
    inner = sympy.Add(*(rest if abs(c) == scale else float(c) / scale * rest for c, rest in terms))
    return sympy.Mul(sympy.Float(scale, 15), inner, evaluate=False)


def _drop_terms(expr: sympy.Expr, score: Score, bound: float) -> sympy.Expr:
    """Remove additive terms, of the law or of any sum inside it (``p*(cos(t) + 4.5e-05)``),
    one at a time while the error stays within ``bound``."""
    changed = True
    while changed:
        changed = False
        trials = []
        for node in sorted(expr.atoms(sympy.Add), key=str):
            for term in node.args:
                rest = expr.xreplace({node: node - term})
                if rest.free_symbols:
                    trials.append((score(rest), -sympy.count_ops(term), str(rest), rest))
        trials.sort(key=lambda t: t[:3])
        if trials and _within(trials[0][0], bound):
            expr, changed = trials[0][3], True
    return expr


def _drop_factors(expr: sympy.Expr, score: Score, bound: float) -> sympy.Expr:
    """Replace factors by 1 (``abs(1 - 3*x)**0.0006``, ``x**0.01``, ``exp(7e-05*m)``) while
    the error stays within bound (a real factor such as ``r**-2`` never does)."""
    changed = True
    while changed:
        changed = False
        factors = [f for f in expr.atoms(sympy.Pow) if f.exp.is_Float or f.exp.is_Rational]
        factors += sorted((f for f in expr.atoms(sympy.exp) if f.has(sympy.Float)), key=str)
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


def _choices(value: float, rel: float, exponent: bool, max_cost: float) -> list[sympy.Expr]:
    """Replacements for a constant, simplest first: exact numbers, then fewer digits.

    Exact numbers are tried from :data:`SNAP_WIDEN` times the precision the teacher supports
    (``rel``), then at tighter ones; a rounded value only where rounding moves it by under ``rel`` /
    :data:`ROUND_SHARE`, so rounding never costs accuracy the teacher had.
    """
    out: list[sympy.Expr] = []
    tol = min(SNAP_WIDEN * rel, 0.1)
    while tol >= 1e-9:  # the cheapest number at each precision: 2/5, then 1/sqrt(2*pi), ...
        snapped = snap_simple(value, tol, max_cost, rational=exponent)
        if snapped is not None and snapped not in out:
            out.append(snapped)
        tol /= 10
    seen = {value}
    for digits in range(1, 16):
        rounded = float(f"{value:.{digits}g}")
        if rounded in seen or abs(rounded - value) > rel / ROUND_SHARE * abs(value):
            continue
        seen.add(rounded)
        exact = rounded.is_integer() and abs(rounded) < 1e15
        out.append(sympy.Integer(int(rounded)) if exact else sympy.Float(rounded, 15))
    return out


def _snap_constants(
    expr: sympy.Expr, score: Score, bound: float, rel: float, max_cost: float
) -> sympy.Expr:
    """Replace each float by its simplest acceptable choice (largest constants first)."""
    floats = sorted(expr.atoms(sympy.Float), key=lambda f: -abs(float(f)))
    exponents = {p.exp for p in expr.atoms(sympy.Pow)}
    for number in floats:
        if number not in expr.atoms(sympy.Float):
            continue
        for choice in _choices(float(number), rel, number in exponents, max_cost):
            trial = expr.xreplace({number: choice})
            if _within(score(trial), bound):
                expr = trial
                break
    return expr


def settle(
    expr: sympy.Expr, score: Score, sigma: float, size: float, max_cost: float = MAX_COST
) -> sympy.Expr:
    """``expr`` without the terms and digits that only model noise of level ``sigma``.

    A change is kept when the error it adds, in quadrature, is within ``sigma``; the snaps
    of constants together add at most the noise, never more than the law's own error (a
    snap that adds more than the noise is a wrong constant). For a
    least-squares fit the residual is orthogonal to a constant's effect, so
    ``score(new)**2 - score(old)**2`` is the change's own size, whatever error the teacher
    has at the edges of its ranges (where a heavy-tailed law makes the RMSE itself large).

    Args:
        expr: the law (numbers inline).
        score: its RMSE against the teacher (or data) in the output's units.
        sigma: the error a change may add: the teacher's error level, same units.
        size: the RMS of the output, so sigma / size is the relative precision supported.
        max_cost: the dearest exact number a constant may become (:mod:`._snap`'s prior).
    """
    if sigma <= 0 or not math.isfinite(sigma):
        return expr
    score = _finite_only(score)
    expr = merge_numbers(expr)
    start = score(expr)
    if not math.isfinite(start):
        return expr
    bound = math.hypot(start, sigma)
    rel = min(max(sigma / max(size, 1e-300), FLOAT32_FLOOR), 0.05)
    # The noise a snap may add: sigma, but never more than the error the law itself shows
    # (float32 resolution at least). A teacher that records no error is taken to be right
    # to 1 %; a law that fits it to 0.01 % shows it is better, and a snap that adds 0.4 %
    # (ln 2 as 2*pi/9) is a wrong constant, not noise.
    snap_noise = min(sigma, max(start, FLOAT32_FLOOR * size))

    def cleaned(law: sympy.Expr) -> sympy.Expr:
        law = _drop_factors(_drop_terms(law, score, bound), score, bound)
        snap_bound = min(bound, math.hypot(score(law), snap_noise))
        return _snap_constants(law, score, snap_bound, rel, max_cost)

    plain = cleaned(expr)
    scaled = merge_numbers(_scaled_sums(expr))
    if scaled == expr or not _within(score(scaled), bound):
        return plain
    other = cleaned(scaled)  # the sums' common scales factored out: kept when simpler
    return other if law_complexity(other) < law_complexity(plain) else plain
