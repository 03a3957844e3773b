"""Constant snapping: replace fitted floats by simple exact numbers when they agree.

Exact data gives constants accurate to ~1e-10, so a fitted 12.566370614 is 4*pi, 0.7071067 is
sqrt(2)/2. Candidates are small rationals times a power of pi, sqrt(2), sqrt(pi) or e; the
simplest one within the tolerance wins, so a snap never trades accuracy for looks: the caller
verifies the snapped equation on all the data and keeps the float if it got worse.
"""

from __future__ import annotations

import math
from fractions import Fraction

import sympy

from modreg.distill._expr import complexity

__all__ = ["snap_constant", "snap_exponent"]

_BASES: list[tuple[sympy.Expr, float]] = []


def _bases() -> list[tuple[sympy.Expr, float]]:
    """Irrational multipliers tried after plain rationals (cheapest first)."""
    if not _BASES:
        pi, two = sympy.pi, sympy.Integer(2)
        forms = [sympy.Integer(1)]
        forms += [pi**k for k in (1, -1, 2, -2, 3, -3)]
        forms += [sympy.sqrt(two), 1 / sympy.sqrt(two), sympy.sqrt(pi), 1 / sympy.sqrt(pi)]
        forms += [sympy.sqrt(2 * pi), 1 / sympy.sqrt(2 * pi), sympy.E, 1 / sympy.E]
        forms += [pi * sympy.sqrt(two), sympy.sqrt(3), 1 / sympy.sqrt(3)]
        _BASES.extend((f, float(f)) for f in forms)
    return _BASES


def snap_exponent(value: float, max_den: int = 6, tol: float = 1e-6) -> Fraction | None:
    """The simple fraction (denominator <= max_den) within ``tol`` of an exponent, else None."""
    if not math.isfinite(value):
        return None
    frac = Fraction(value).limit_denominator(max_den)
    return frac if abs(float(frac) - value) <= tol * max(1.0, abs(value)) else None


def snap_constant(value: float, rel_tol: float = 1e-7) -> sympy.Expr | None:
    """The simplest 'p/q * base' within ``rel_tol`` of ``value`` (None when nothing is close)."""
    if not math.isfinite(value) or value == 0.0:
        return sympy.Integer(0) if value == 0.0 else None
    best: tuple[int, float, sympy.Expr] | None = None
    for form, fval in _bases():
        ratio = value / fval
        frac = Fraction(ratio).limit_denominator(24)
        if frac == 0 or abs(frac.numerator) > 2000:
            continue
        err = abs(float(frac) * fval - value) / abs(value)
        if err > rel_tol:
            continue
        cand = sympy.Rational(frac.numerator, frac.denominator) * form
        key = (complexity(cand), err, cand)
        if best is None or key[:2] < best[:2]:
            best = key
    return None if best is None else best[2]


def float_constant(value: float, digits: int = 12) -> sympy.Expr:
    """A float constant rounded to ``digits`` significant digits (keeps printed text short)."""
    if value == 0.0 or not math.isfinite(value):
        return sympy.Integer(0)
    snapped = snap_constant(value)
    if snapped is not None:
        return snapped
    return sympy.Float(float(f"{value:.{digits}g}"), 15)
