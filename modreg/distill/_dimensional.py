"""Dimensional analysis (Buckingham pi): a prefactor with the output's unit and pi groups.

Any physical law y = f(x) can be written y = P(x) * g(pi_1, ..., pi_k), where P is a product of
powers of the inputs with y's dimension and the pi groups are dimensionless products. The search
then works on k < n dimensionless variables. Which "repeating" variables build P and the groups
is a free choice; different choices make different laws simple, so several variants are
returned, simplest exponents first.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

__all__ = ["DAVariant", "dimensional_variants", "unit_matrix"]

Exponents = tuple[Fraction, ...]
_MAX_DEN = 12


@dataclass(frozen=True)
class DAVariant:
    """One Buckingham decomposition: y = prod(x**prefactor) * g(groups)."""

    prefactor: Exponents  # one exponent per input variable
    groups: tuple[Exponents, ...]  # each group: one exponent per input variable
    repeating: tuple[int, ...]  # indices of the variables that build the prefactor

    def score(self) -> float:
        """Lower is simpler: small integer exponents make laws read naturally."""
        total = 0.0
        for vec in (self.prefactor, *self.groups):
            total += sum(abs(float(e)) for e in vec)
            total += 3.0 * sum(1 for e in vec if e.denominator != 1)
        return total


def unit_matrix(
    units: Sequence[Mapping[str, float]], target_unit: Mapping[str, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
    """Dimension matrix D (dims x vars), the target's dimension vector and the dimension names."""
    dims = sorted(
        {k for u in units for k, v in u.items() if v} | {k for k, v in target_unit.items() if v}
    )
    mat = np.array([[float(u.get(d, 0.0)) for u in units] for d in dims], dtype=np.float64)
    target = np.array([float(target_unit.get(d, 0.0)) for d in dims], dtype=np.float64)
    return mat.reshape(len(dims), len(units)), target, dims


def _rational(vec: NDArray[np.float64]) -> Exponents | None:
    out = tuple(Fraction(float(v)).limit_denominator(_MAX_DEN) for v in vec)
    if np.max(np.abs(np.array([float(f) for f in out]) - vec), initial=0.0) > 1e-9:
        return None
    return out


def _solve(mat: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Exact solution of mat @ a = rhs, or None when rhs is outside the column space."""
    if mat.shape[1] == 0:
        return np.zeros(0) if not np.any(rhs) else None
    sol = np.asarray(np.linalg.lstsq(mat, rhs, rcond=None)[0], dtype=np.float64)
    return sol if np.allclose(mat @ sol, rhs, atol=1e-9) else None


def _variant(
    mat: NDArray[np.float64], target: NDArray[np.float64], rep: tuple[int, ...]
) -> DAVariant | None:
    n = mat.shape[1]
    sub = mat[:, list(rep)]
    pref = _solve(sub, target)
    if pref is None:
        return None
    full = np.zeros(n)
    full[list(rep)] = pref
    pref_r = _rational(full)
    if pref_r is None:
        return None
    groups: list[Exponents] = []
    for j in range(n):
        if j in rep:
            continue
        coef = _solve(sub, mat[:, j])
        if coef is None:
            return None
        vec = np.zeros(n)
        vec[j] = 1.0
        vec[list(rep)] = -coef
        group = _rational(vec)
        if group is None:
            return None
        groups.append(group)
    return DAVariant(pref_r, tuple(groups), rep)


def dimensional_variants(
    units: Sequence[Mapping[str, float]],
    target_unit: Mapping[str, float],
    max_variants: int = 6,
) -> list[DAVariant]:
    """Buckingham decompositions, simplest first; empty when the target unit cannot be built.

    An empty list means the units are inconsistent with any power-law prefactor (for example
    one wrong unit entry); the caller then searches on the raw variables instead.
    """
    mat, target, _ = unit_matrix(units, target_unit)
    n = mat.shape[1]
    if mat.shape[0] == 0:
        return [DAVariant(tuple(Fraction(0) for _ in range(n)), _identity(n), ())]
    rank = int(np.linalg.matrix_rank(mat)) if n else 0
    dimensional = [j for j in range(n) if np.any(mat[:, j])]
    found: dict[tuple[Exponents, tuple[Exponents, ...]], DAVariant] = {}
    for rep in itertools.combinations(dimensional, rank):
        if np.linalg.matrix_rank(mat[:, list(rep)]) < rank:
            continue
        var = _variant(mat, target, rep)
        if var is not None:
            found.setdefault((var.prefactor, var.groups), var)
    ranked = sorted(found.values(), key=lambda v: (v.score(), v.repeating))
    return ranked[:max_variants]


def _identity(n: int) -> tuple[Exponents, ...]:
    return tuple(tuple(Fraction(int(i == j)) for j in range(n)) for i in range(n))
