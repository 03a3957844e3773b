"""Dense polynomial fits (AI Feynman's "polyfit"): all monomials up to a total degree.

Greedy sparse selection struggles when the working variables span narrow ranges (x, x**2 and
1/x are then nearly collinear) and the law has many terms, e.g. a sum of squared differences.
A dense least-squares fit over every monomial of bounded degree has no such problem: when the
law is a polynomial the residual vanishes, and the zero coefficients are pruned afterwards.

On a noisy target (a network teacher) the residual never vanishes; then backward elimination
from the dense fit gives the best fit of each size up to :data:`._fits.SPARSE_TERMS` terms
(``1/F = a*u**2 + b*v**2 + c*w**2`` among the ten monomials of degree 2), which greedy
forward selection misses among collinear monomials. Settling snaps their coefficients.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import sympy
from numpy.typing import NDArray

from modreg.distill._fits import SPARSE_TERMS, _coef, _transforms
from modreg.distill._library import to_sympy
from modreg.distill._problem import Candidate, Problem, Workspace, score_candidate
from modreg.distill._snap import float_constant

__all__ = ["fit_poly"]

Array = NDArray[np.float64]
MAX_COLUMNS = 220


def _exponents(k: int, degree: int) -> list[tuple[int, ...]]:
    out = [e for e in itertools.product(range(degree + 1), repeat=k) if sum(e) <= degree]
    return sorted(out, key=lambda e: (sum(e), e))


def _prune(a: Array, t: Array, tol: float) -> tuple[list[int], Array] | None:
    """Least squares on all columns, then drop negligible ones while the fit stays exact."""
    keep = list(range(a.shape[1]))
    scale = float(np.linalg.norm(t)) or 1.0
    for _ in range(a.shape[1]):
        sub = a[:, keep]
        coef = np.asarray(np.linalg.lstsq(sub, t, rcond=None)[0], dtype=np.float64)
        if float(np.linalg.norm(t - sub @ coef)) > tol * scale:
            return None
        size = np.abs(coef) * np.linalg.norm(sub, axis=0)
        small = size < 1e-7 * scale
        if not small.any():
            return keep, coef
        keep = [c for c, s in zip(keep, small, strict=True) if not s]
        if not keep:
            return None
    return None


def _backward(a: Array, t: Array, sizes: int) -> list[tuple[list[int], Array]]:
    """The column sets of each size up to ``sizes`` that backward elimination keeps, with
    their least-squares coefficients: the column whose removal adds the least residual goes
    first (its added residual is coef**2 / inv(A^T A)_jj, one inverse per step)."""
    keep = list(range(a.shape[1]))
    out: list[tuple[list[int], Array]] = []
    while keep:
        sub = a[:, keep]
        gram_inv = np.linalg.pinv(sub.T @ sub)
        coef = gram_inv @ (sub.T @ t)
        if len(keep) <= sizes:
            out.append((list(keep), np.asarray(coef, dtype=np.float64)))
        if len(keep) == 1:
            break
        cost = coef**2 / np.maximum(np.diag(gram_inv), 1e-300)
        keep.pop(int(np.argmin(cost)))
    return out[::-1]


def fit_poly(ws: Workspace, problem: Problem) -> list[Candidate]:
    """T(z) as a dense polynomial of the working variables, pruned to its non-zero terms."""
    v = ws.w_values[problem.sub]
    z = ws.z(problem)[problem.sub]
    k = v.shape[1]
    if k == 0 or not np.all(np.isfinite(z)):
        return []
    out: list[Candidate] = []
    for degree in (2, 3, 4):
        exps = _exponents(k, degree)
        if len(exps) > min(MAX_COLUMNS, v.shape[0] // 2):
            break
        a = np.stack([np.prod(v ** np.array(e, dtype=np.float64), axis=1) for e in exps], axis=1)
        for name, fwd, inv in _transforms(z)[:5]:
            with np.errstate(all="ignore"):
                t = fwd(z)
            if not np.all(np.isfinite(t)):
                continue
            source = f"{ws.label}:poly{degree}-{name}"
            found = _prune(a, t, 1e-10)
            if found is None:  # noisy: the sparse fits of backward elimination
                with np.errstate(all="ignore"):
                    fits = _backward(a, t, SPARSE_TERMS) if np.all(np.isfinite(a)) else []
                for keep, coef in fits:
                    expr = ws.prefactor * inv(_polynomial(exps, keep, coef, ws, snap=False))
                    cand = score_candidate(expr, problem, source)
                    out += [] if cand is None else [cand]
                continue
            keep, coef = found
            for snap in (True, False):
                expr = ws.prefactor * inv(_polynomial(exps, keep, coef, ws, snap))
                cand = score_candidate(expr, problem, source)
                if cand is not None:
                    out.append(cand)
                    if cand.exact:
                        return out
    return out


def _polynomial(
    exps: list[tuple[int, ...]], keep: list[int], coef: Array, ws: Workspace, snap: bool
) -> sympy.Expr:
    """The sum of the kept monomials with their coefficients (snapped or as floats)."""
    return sympy.Add(
        *[
            (_coef(c) if snap else float_constant(c, digits=15))
            * to_sympy(("mono", tuple(Fraction(p) for p in exps[j])), ws.w_exprs)
            for j, c in zip(keep, coef.tolist(), strict=True)
        ]
    )
