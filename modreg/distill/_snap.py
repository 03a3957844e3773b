"""Constant snapping: replace fitted floats by simple exact numbers when they agree.

Exact data gives constants accurate to ~1e-10, so a fitted 12.566370614 is 4*pi, 0.7071067 is
sqrt(2)/2. Candidates are small rationals times a power of pi, sqrt(2), sqrt(pi), e or ln 2; the
simplest one within the tolerance wins, so a snap never trades accuracy for looks: the caller
verifies the snapped equation on all the data and keeps the float if it got worse.
"""

from __future__ import annotations

import math
from fractions import Fraction

import sympy

from modreg.distill._expr import complexity

__all__ = ["constant_cost", "snap_constant", "snap_exponent", "snap_simple"]

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
        forms += [sympy.log(two), 1 / sympy.log(two), sympy.log(10)]
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


def float_constant(value: float, digits: int = 12, exponent: bool = False) -> sympy.Expr:
    """A float constant rounded to ``digits`` significant digits (keeps printed text short),
    or the exact number it matches to 1e-7. An ``exponent`` matches fractions only: a power
    is 3/8, never ``7*pi/22`` for a fitted 0.9996."""
    if value == 0.0 or not math.isfinite(value):
        return sympy.Integer(0)
    if exponent:
        frac = snap_exponent(value, max_den=24, tol=1e-7)
        snapped = None if frac is None else sympy.Rational(frac.numerator, frac.denominator)
    else:
        snapped = snap_constant(value)
    if snapped is not None:
        return snapped
    return sympy.Float(float(f"{value:.{digits}g}"), 15)


# The irrational factors of a law's constants, with their prior cost: powers of pi are the
# commonest in physics (2*pi, pi**2), and 1/(4*pi) is one factor of its own (Coulomb's
# 1/(4*pi*epsilon), a sphere's area), so 3/(20*pi) is 3/5 of it; square roots next, e the
# rarest; ln 2 (half-lives, 2**(-t/T) as exp(-log(2)*t/T)) between them, ln 10 (decibels,
# decades) as dear as e. A rational's cost is log2(1 + |p|) + log2(q): 1 -> 1, 1/2 -> 2,
# 3/4 -> 4, 12 -> 3.7.
_PRIOR: list[tuple[sympy.Expr, float, float]] = []  # (form, its value, its cost), built once
MAX_NUMERATOR, MAX_DENOMINATOR = 64, 12
EXPONENT_DENOMINATOR = 4  # exponents of laws: 3/2, 1/3, 5/4; never 15/7
MAX_COST = 7.0  # 1/(4*pi) costs 2, 3/(4*pi**2) 6; 20/(3*pi**2) (8) is a coincidence


def _prior() -> list[tuple[sympy.Expr, float, float]]:
    if not _PRIOR:
        pi, two, three = sympy.pi, sympy.Integer(2), sympy.Integer(3)
        forms = [(sympy.Integer(1), 0.0), (pi, 1.0), (1 / pi, 1.0), (1 / (4 * pi), 2.0)]
        forms += [(sympy.sqrt(two), 1.5), (pi**2, 2.0), (pi**-2, 2.0)]
        forms += [(sympy.sqrt(pi), 2.0), (1 / sympy.sqrt(pi), 2.0), (sympy.sqrt(three), 2.0)]
        forms += [(sympy.sqrt(2 * pi), 2.0), (1 / sympy.sqrt(2 * pi), 2.0)]
        forms += [(pi**3, 3.0), (pi**-3, 3.0), (sympy.E, 3.0), (1 / sympy.E, 3.0)]
        forms += [(sympy.log(two), 2.5), (1 / sympy.log(two), 2.5), (sympy.log(10), 3.0)]
        _PRIOR.extend((form, float(form), cost) for form, cost in forms)
    return _PRIOR


def constant_cost(number: Fraction) -> float:
    """The prior cost of a rational factor (see ``_PRIOR``)."""
    return math.log2(1 + abs(number.numerator)) + math.log2(number.denominator)


def snap_simple(
    value: float, rel_tol: float, max_cost: float = MAX_COST, rational: bool = False
) -> sympy.Expr | None:
    """The cheapest ``p/q * base`` within ``rel_tol`` of ``value`` by the physics prior.

    For constants fitted to a network teacher, whose error allows a loose tolerance: the
    cheapest candidate, not the closest, is the likely law (0.0792 is 1/(4*pi), not the
    closer 2/(7*e)). ``rational``: plain fractions only (an exponent is 3/2, never 3/pi).
    None when nothing within ``max_cost`` is close enough.
    """
    if not math.isfinite(value) or value == 0.0:
        return None
    best: tuple[float, float, sympy.Expr] | None = None
    for form, fval, base_cost in _prior()[:1] if rational else _prior():
        ratio = value / fval
        top = EXPONENT_DENOMINATOR if rational else MAX_DENOMINATOR
        if max_cost < math.inf:  # p = 1 already costs 1
            top = min(top, int(2 ** (max_cost - base_cost - 1)))
        for q in range(1, top + 1):
            p = round(ratio * q)
            if p == 0 or abs(p) > MAX_NUMERATOR or math.gcd(p, q) != 1:
                continue
            err = abs(p / q * fval - value) / abs(value)
            cost = constant_cost(Fraction(p, q)) + base_cost
            if err <= rel_tol and cost <= max_cost and (best is None or (cost, err) < best[:2]):
                best = (cost, err, sympy.Rational(p, q) * form)
    return None if best is None else best[2]
