"""Removable singularities: ``sin(u)**k`` over ``u**k`` written as ``sinc(u)**k``.

The search builds ``sin(u)`` and powers of the variables separately, so a diffraction law
comes back as ``sin(t*(w - w0)/2)**2/(t*(w - w0)**2)``: right everywhere except at
``w = w0``, where it is 0/0. Publish evaluates a law at its inputs' declared ranges (the
centre first, :mod:`modreg.spec._finite`), and the range probe of distillation refuses what
publish would, so the true form was ruled out whenever the zero lay inside the ranges.
Rewritten with the grammar's ``sinc`` (sin(u)/u, 1 at 0), the same function is finite there
(and stays accurate in float32 near the zero, where ``(1 - cos(2*x))/x**2`` cancels). A
fit's ``n*(1 - cos(v))`` is read as ``2*n*sin(v/2)**2`` first, kept only when that leads
to a ``sinc``.

The rewrite is exact algebra (``sin(u)**k * rest == sinc(u)**k * (rest * u**k)``) and is
made only where it takes every factor of ``u`` out of the denominator (``k > 0``; out of
the numerator for ``x/sin(x)``), so a law without the 0/0 shape, or with a true pole
(``sin(x)/x**3``), is left as it is.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

__all__ = ["remove_singularities"]


def remove_singularities(expr: Any) -> Any:
    """``expr`` with every ``sin(u)**k / u**k`` shape of its products written with ``sinc``.

    Example:
        >>> x, a = sp.symbols("x a", real=True)
        >>> remove_singularities(a * sp.sin(x) ** 2 / x**2)
        a*sinc(x)**2
        >>> remove_singularities(a * (1 - sp.cos(2 * x)) / x**2)
        2*a*sinc(x)**2
        >>> remove_singularities(a * sp.sin(x) / x**3)  # a true pole stays
        a*sin(x)/x**3
    """
    if not expr.args or not expr.has(sp.sin, sp.cos):
        return expr
    args = [remove_singularities(a) for a in expr.args]
    node = expr.func(*args) if args != list(expr.args) else expr
    if not isinstance(node, sp.Mul):
        return node
    halved = sp.Mul(*(_half_angle(f) for f in node.args))
    rewritten = _product(halved)
    return rewritten if rewritten.has(sp.sinc) else _product(node)


def _half_angle(factor: Any) -> Any:
    """``n*(1 - cos(v))`` as ``2*n*sin(v/2)**2`` (how a fit writes sin(u)**2), else as is."""
    base, k = factor.as_base_exp()
    if not (isinstance(base, sp.Add) and len(base.args) == 2):
        return factor
    number, other = sorted(base.args, key=lambda a: bool(a.free_symbols))
    coefficient, cosine = other.as_coeff_Mul()
    if not (number.is_Number and isinstance(cosine, sp.cos) and coefficient == -number):
        return factor
    return (2 * number * sp.sin(cosine.args[0] / 2) ** 2) ** k


def _product(product: Any) -> Any:
    for factor in product.args:
        base, k = factor.as_base_exp()
        if not (isinstance(base, sp.sin) and k.is_Integer):
            continue
        # u's factors as the rest spells them: 0.5*a - 0.5*x is 0.5*(a - x)
        rest, u = product / factor, sp.factor_terms(base.args[0])
        if not _opposite(rest, u, k):
            continue
        moved = sp.expand_power_base(rest * u**k, force=True)
        if _opposite(moved, u, k):  # sympy keeps (a - x)/(x - a): cancel the signs
            moved = sp.factor(sp.cancel(moved))
        if not _opposite(moved, u, k):
            return _product(sp.sinc(base.args[0]) ** k * moved)
    return product


def _opposite(expr: Any, u: Any, k: Any) -> bool:
    """Whether a non-constant factor of ``u`` is a power of ``expr`` of the sign opposite to
    ``k``: a factor of the denominator for ``sin(u)**2``, of the numerator for ``1/sin(u)``."""
    bases = {f.as_base_exp()[0] for f in sp.Mul.make_args(u) if f.free_symbols}
    bases |= {-b for b in bases if b.is_Add}  # sympy writes sin(x - a) as -sin(a - x)
    for factor in sp.Mul.make_args(expr):
        base, exponent = factor.as_base_exp()
        if base in bases and exponent.is_number and (exponent * k).is_negative:
            return True
    return False
