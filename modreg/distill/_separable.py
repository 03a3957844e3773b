"""Separability from an oracle, as in AI Feynman: f(A, B) = g(A) + h(B) or g(A) * h(B).

A network teacher can be queried anywhere. For two draws p and q and a split of the inputs
into groups A and B, an additive f has f(pA, pB) + f(qA, qB) = f(pA, qB) + f(qA, pB)
(a multiplicative one the same on log|f|). When a split passes on every tested pair to the
oracle's own precision, each half is a problem of its own with fewer variables: g(A) is f
with B held at a reference point b0, h(B) is f with A held at a0. Each half is distilled
(recursively: a half may split again), and the law is rebuilt as g + h - f(a0, b0) or
g * h / f(a0, b0), that one number refitted to the samples. The rebuilt law is only a
candidate: it is scored on the real samples like any other, so a split that was wrong
costs time, never the answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Split", "find_split", "half_problem"]

Array = NDArray[np.float64]
Oracle = Callable[[Array], Array]
PAIRS = 200  # pairs of draws each split is tested on
SPLIT_TOL = 0.02  # mixed-pair residual / the oracle's own variation: 2 %, as for symmetries
LOG_FLOOR = 0.02  # the multiplicative test uses values above 2 % of the median |f| ...
MIN_CLEAR = 0.25  # ... and needs at least a quarter of the pairs to have them
EXHAUSTIVE_VARS = 10  # up to this many inputs every split is tested (2**(n-1) - 1 of them)


@dataclass(frozen=True)
class Split:
    """f separates between the inputs ``group`` and the rest, by ``kind`` ('add', 'mul')."""

    kind: str
    group: tuple[int, ...]
    rest: tuple[int, ...]
    residual: float  # median mixed-pair residual relative to f's own variation


def _groups(n: int) -> list[tuple[int, ...]]:
    """Every split once, as the group holding input 0; beyond :data:`EXHAUSTIVE_VARS` inputs,
    single inputs and pairs against the rest only."""
    if n <= EXHAUSTIVE_VARS:
        return [
            (0, *others)
            for size in range(n - 1)
            for others in itertools.combinations(range(1, n), size)
        ]
    return [g for size in (1, 2) for g in itertools.combinations(range(n), size)]


def find_split(x: Array, oracle: Oracle, seed: int, tol: float = SPLIT_TOL) -> Split | None:
    """The split of the inputs the oracle is most clearly separable along, or None.

    Among the splits within ``tol``, the most balanced one wins (it shrinks both halves
    most), then the smaller residual; additive before multiplicative on a tie.
    """
    n = x.shape[1]
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    p = x[rng.choice(x.shape[0], size=PAIRS)]
    q = x[rng.choice(x.shape[0], size=PAIRS)]
    fp, fq = oracle(p), oracle(q)
    if not (np.all(np.isfinite(fp)) and np.all(np.isfinite(fq))):
        return None
    spread = float(np.median(np.abs(fp - fq)))
    floor = LOG_FLOOR * float(np.median(np.abs(np.concatenate([fp, fq]))))
    found: list[tuple[int, float, int, Split]] = []
    for group in _groups(n):
        rest = tuple(i for i in range(n) if i not in group)
        mixed_pq, mixed_qp = p.copy(), q.copy()
        mixed_pq[:, rest], mixed_qp[:, rest] = q[:, rest], p[:, rest]
        f1, f2 = oracle(mixed_pq), oracle(mixed_qp)
        if not (np.all(np.isfinite(f1)) and np.all(np.isfinite(f2))):
            continue
        tests = []
        if spread > 0:
            tests.append(("add", float(np.median(np.abs(fp + fq - f1 - f2))) / spread))
        if (share := _log_residual(fp, fq, f1, f2, floor)) is not None:
            tests.append(("mul", share))
        for order, (kind, residual_share) in enumerate(tests):
            if residual_share < tol:
                split = Split(kind, group, rest, residual_share)
                found.append((max(len(group), len(rest)), residual_share, order, split))
    if not found:
        return None
    return min(found, key=lambda t: (t[0], t[1], t[2], t[3].group))[3]


def _log_residual(fp: Array, fq: Array, f1: Array, f2: Array, floor: float) -> float | None:
    """The multiplicative test's median residual on log|f| relative to log|f|'s own spread,
    on the pairs whose four values share a sign and stand clear of zero (above ``floor``):
    near a zero of the law (``sin(x)**2``) a teacher's error is all of its value, and a
    sign it gets wrong there says nothing about the split. None with too few such pairs."""
    values = np.stack([fp, fq, f1, f2])
    clear = np.all(np.abs(values) > floor, axis=0) & np.all(values * fp > 0, axis=0)
    if clear.sum() < MIN_CLEAR * fp.size:
        return None
    logs = np.log(np.abs(values[:, clear]))
    spread = float(np.median(np.abs(logs[0] - logs[1])))
    if spread <= 0:
        return None
    return float(np.median(np.abs(logs[0] + logs[1] - logs[2] - logs[3]))) / spread


def half_problem(
    x: Array, oracle: Oracle, keep: Sequence[int], reference: Array
) -> tuple[Array, Array, Oracle]:
    """The half of the problem over inputs ``keep``, the others held at ``reference``:
    its samples (the data's own rows of ``keep``), the oracle's values there, and the
    oracle of the half."""
    keep = list(keep)

    def half(columns: Array) -> Array:
        full = np.tile(reference, (columns.shape[0], 1))
        full[:, keep] = columns
        return oracle(full)

    xs = x[:, keep].copy()
    return xs, half(xs), half
