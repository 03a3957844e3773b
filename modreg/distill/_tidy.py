"""Tidying: rewrite a found equation into its shortest equivalent form.

Library fits come out expanded (``x1*sqrt(1 - 2*x2/x1 + ...)``); sympy's rewriters (on
positive symbols, since physical inputs in a sampled range rarely change sign) often fold
them back into the textbook form. A rewrite is kept only if it is shorter and numerically
identical on the data, so tidying can never change the law.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy

from modreg.distill._expr import complexity, evaluate, is_finite_expr
from modreg.distill._problem import Problem

__all__ = ["tidy"]

_MAX_NODES = 60  # sympy's rewriters can take minutes on large trees


def _rewrites() -> list[Callable[[sympy.Expr], sympy.Expr]]:
    return [
        lambda e: sympy.powsimp(e, force=True),
        lambda e: sympy.powdenest(e, force=True),
        sympy.cancel,
        sympy.factor,
        lambda e: sympy.factor_terms(sympy.together(e)),
        sympy.simplify,
    ]


def _positive(
    expr: sympy.Expr, problem: Problem
) -> tuple[sympy.Expr, dict[sympy.Symbol, sympy.Symbol]]:
    """Swap symbols whose data are all positive for positive symbols (enables sqrt(x**2) = x)."""
    to_pos, back = {}, {}
    for sym in expr.free_symbols:
        if np.all(problem.env[sym.name] > 0):
            pos = sympy.Symbol(sym.name, positive=True)
            to_pos[sym], back[pos] = pos, sym
    return expr.xreplace(to_pos), back


def tidy(expr: sympy.Expr, problem: Problem) -> sympy.Expr:
    """The shortest numerically identical rewrite of ``expr`` (``expr`` itself if none)."""
    if complexity(expr) > _MAX_NODES or any(a.is_Float for a in expr.atoms(sympy.Number)):
        return expr
    rows = {k: v[problem.sub] for k, v in problem.env.items()}
    ref = evaluate(expr, rows, problem.sub.size)
    best, best_size = expr, complexity(expr)
    pos_expr, back = _positive(expr, problem)
    for rewrite in _rewrites():
        try:
            cand = rewrite(pos_expr).xreplace(back)
        except (ValueError, TypeError, RecursionError, ZeroDivisionError):
            continue
        size = complexity(cand)
        if size >= best_size or not is_finite_expr(cand) or cand.free_symbols - expr.free_symbols:
            continue
        vals = evaluate(cand, rows, problem.sub.size)
        scale = np.maximum(np.abs(ref), 1e-12)
        if np.all(np.isfinite(vals)) and float(np.max(np.abs(vals - ref) / scale)) < 1e-10:
            best, best_size = cand, size
    return best
