"""Publish-time check that an equation can be computed: finite values where it will be used.

The grammar refuses numbers that fold to infinities, but ``acos(2)`` stays symbolic and
``exp(exp(exp(exp(10))))`` is a valid tree; both build code that returns only NaN or inf.
So the equation is evaluated (numpy, float64, the functions of
:data:`modreg.spec.grammar.GRAMMAR`) at a fixed set of points:

- when every input it uses declares a ``range``: the centre and seeded draws inside the
  ranges; one non-finite value there is refused, with the point, since the module promises
  to work over its declared ranges;
- otherwise, at a few points of ordinary magnitude for the unranged inputs; refused only
  when the value is non-finite at every one of them (no input could make it work).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy as sp

from modreg.errors import InvalidExpression
from modreg.spec.expr import Dot, Norm
from modreg.spec.grammar import GRAMMAR

__all__ = ["check_finite"]

Array = np.ndarray[Any, Any]
DRAWS = 32
_UNRANGED = np.array([0.5, 1.0, 2.0, 3.7, 10.0, 0.1, -1.0, -2.5])
_NUMPY: dict[str, Callable[[Array], Array]] = {
    f.sympy: f.numpy_function() for f in GRAMMAR if f.numpy and f.name != "sqrt"
}


def _samples(
    ranges: Mapping[str, tuple[float, float] | None], shapes: Mapping[str, tuple[int, ...]]
) -> tuple[dict[str, Array], int]:
    """Values per name: the ranges' centre, then seeded draws; unranged names cycle magnitudes."""
    rng = np.random.default_rng(0)
    n = DRAWS + 1 if all(ranges.values()) else len(_UNRANGED)
    values: dict[str, Array] = {}
    for name, bounds in ranges.items():
        shape = (n, *shapes[name])
        if bounds is None:
            base = np.resize(_UNRANGED, n)
            values[name] = np.broadcast_to(base.reshape(n, *([1] * len(shape[1:]))), shape).copy()
            continue
        low, high = bounds
        draws = rng.uniform(low, high, size=shape)
        draws[0] = (low + high) / 2
        values[name] = draws
    return values, n


def _align(a: Any, b: Any) -> tuple[Any, Any]:
    """Batched scalars meet vectors with a trailing axis (as the generated code unsqueezes)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim != b.ndim:
        if a.ndim < b.ndim:
            a = a.reshape(a.shape + (1,) * (b.ndim - a.ndim))
        else:
            b = b.reshape(b.shape + (1,) * (a.ndim - b.ndim))
    return a, b


def _eval(expr: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(expr, sp.Symbol):
        return env[expr.name]
    if expr.is_Number or expr.is_NumberSymbol:
        return float(expr)
    if isinstance(expr, (sp.Add, sp.Mul)):
        op = np.add if isinstance(expr, sp.Add) else np.multiply
        acc = _eval(expr.args[0], env)
        for arg in expr.args[1:]:
            acc = op(*_align(acc, _eval(arg, env)))
        return acc
    if isinstance(expr, sp.Pow):
        return np.power(*_align(*(np.asarray(_eval(a, env), float) for a in expr.args)))
    if isinstance(expr, Norm):
        return np.linalg.norm(np.atleast_1d(_eval(expr.args[0], env)), axis=-1)
    if isinstance(expr, Dot):
        left, right = (_eval(a, env) for a in expr.args)
        return np.sum(np.multiply(left, right), axis=-1)
    return _NUMPY[type(expr).__name__](np.asarray(_eval(expr.args[0], env), float))


def check_finite(
    expr: Any,
    ranges: Mapping[str, tuple[float, float] | None],
    constants: Mapping[str, float | list[float]],
    shapes: Mapping[str, tuple[int, ...]],
    text: str,
) -> None:
    """Refuse ``expr`` when it is not finite where it must be (see the module docstring).

    Args:
        expr: a parsed equation over input ports and constants.
        ranges: the declared ``range`` of each input port (None when it has none).
        constants: each constant's value.
        shapes: each input port's per-sample shape.
        text: the equation as written, for the message (printing a tree this large can
            itself overflow).

    Raises:
        InvalidExpression: the value is NaN or infinite; the message names a point and the fix.
    """
    used = {s.name for s in expr.free_symbols}
    ranged = {n: r for n, r in ranges.items() if n in used}
    env, n = _samples(ranged, {k: tuple(v) for k, v in shapes.items()})
    env |= {
        k: np.broadcast_to(np.asarray(v, dtype=float), (n, *np.shape(v)))
        for k, v in constants.items()
        if k in used
    }
    with np.errstate(all="ignore"):
        value = np.asarray(_eval(expr, env), dtype=float)
    value = np.broadcast_to(value.reshape(value.shape or (1,)), (n, *value.shape[1:]))
    bad = ~np.isfinite(value.reshape(n, -1)).all(axis=1)
    if ranged and all(ranged.values()) and bad.any():
        row = int(np.flatnonzero(bad)[0])
        point = ", ".join(f"{k}={np.asarray(env[k][row]).tolist()!r}" for k in sorted(ranged))
        raise InvalidExpression(
            f"{text} is not finite at {point}, inside the declared input ranges: fix the "
            "equation or narrow the ranges to where it is defined"
        )
    if bad.all():
        where = "for any input" if used - set(constants) else "(it has no inputs)"
        raise InvalidExpression(
            f"{text} evaluates to a non-finite value (NaN or infinity) {where}: check the "
            "arguments of acos/asin/log/sqrt and overflowing exp/cosh/sinh"
        )
