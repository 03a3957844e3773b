"""Expression helpers: numeric evaluation, printing and complexity of sympy trees.

Candidate equations are built as sympy trees programmatically (never parsed from text), so
this module evaluates them with its own numpy walker instead of ``lambdify`` (which compiles
generated source text), and prints them in modreg's safe grammar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy
from numpy.typing import NDArray
from sympy.printing.str import StrPrinter

from modreg.spec.expr import sympy_builder
from modreg.spec.grammar import GRAMMAR

Array = NDArray[np.float64]

# One-argument functions of the grammar table and the numpy function that computes each.
_UNARY: dict[Any, Callable[[Array], Array]] = {
    sympy_builder(f.name): f.numpy_function() for f in GRAMMAR if f.elementwise
}


def evaluate(expr: sympy.Expr, env: Mapping[str, Array], n: int) -> Array:
    """Evaluate ``expr`` on column arrays ``env`` (name -> values); always returns shape (n,)."""
    with np.errstate(all="ignore"):
        out = _eval(expr, env)
    return np.broadcast_to(np.asarray(out, dtype=np.float64), (n,)).copy()


def _eval(expr: Any, env: Mapping[str, Array]) -> Array | float:
    if expr.is_Symbol:
        return env[expr.name]
    if expr.is_Number or expr.is_NumberSymbol:
        return float(expr)
    if expr.is_Add:
        return _fold(expr.args, env, np.add)
    if expr.is_Mul:
        return _fold(expr.args, env, np.multiply)
    if expr.is_Pow:
        base, power = expr.args
        return np.power(_eval(base, env), _eval(power, env))
    func = _UNARY.get(expr.func)
    if func is not None and len(expr.args) == 1:
        return func(np.asarray(_eval(expr.args[0], env), dtype=np.float64))
    raise ValueError(f"cannot evaluate {type(expr).__name__} node")


def _fold(
    args: tuple[Any, ...], env: Mapping[str, Array], op: Callable[[Any, Any], Any]
) -> Array | float:
    acc: Array | float = _eval(args[0], env)
    for arg in args[1:]:
        acc = op(acc, _eval(arg, env))
    return acc


class _Printer(StrPrinter):  # type: ignore[misc]
    """sympy's str printer, restricted to modreg's grammar (abs, exp(1), plain floats)."""

    def _print_Abs(self, expr: Any) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_Exp1(self, expr: Any) -> str:
        return "exp(1)"

    def _print_Float(self, expr: Any) -> str:
        return repr(float(expr))


def to_text(expr: sympy.Expr) -> str:
    """Text in modreg's grammar, re-readable by sympy with an explicit symbol table."""
    text: str = _Printer({"order": None}).doprint(expr)
    return text


def complexity(expr: sympy.Expr) -> int:
    """Node count of the expression tree (numbers, symbols and operators count one each)."""
    return sum(1 for _ in sympy.preorder_traversal(expr))


def is_finite_expr(expr: sympy.Expr) -> bool:
    """True when the tree holds no infinities, NaN or imaginary parts."""
    bad = (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan, sympy.I)
    return not any(node in bad for node in sympy.preorder_traversal(expr))
