"""Sparse linear least squares: pick the few library columns that reproduce a target exactly.

Beam orthogonal matching pursuit: at every step each kept selection adds one of the columns
most correlated with its residual, the selections are refitted by least squares, and the
``beam`` best survive. Exact laws leave a residual at rounding level, so the first selection
whose relative residual drops below ``tol`` is the answer; a plain greedy pursuit would be
misled by correlated columns more often than a small beam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["SparseFit", "sparse_fit", "tiered_fit"]

Array = NDArray[np.float64]
PAIR_LIMIT = 1500  # up to this many columns, every pair is scored (a Gram matrix)
SCREEN = 48  # beyond it, pairs with one of the best single columns


@dataclass(frozen=True)
class SparseFit:
    """Selected column indices, their coefficients, and the relative residual."""

    columns: tuple[int, ...]
    coefs: tuple[float, ...]
    rel_residual: float


def _final(a: Array, t: Array, cols: tuple[int, ...], rel: float) -> SparseFit:
    """Refit the chosen columns on the original, unprojected data, dropping columns whose
    contribution is at rounding level (an intercept the law does not have)."""
    order = tuple(sorted(cols))
    for _ in range(2):
        sub = a[:, list(order)]
        norms = np.linalg.norm(sub, axis=0)
        norms[norms == 0] = 1.0
        coef, *_ = np.linalg.lstsq(sub / norms, t, rcond=None)
        keep = np.abs(coef) > 1e-9 * (float(np.linalg.norm(t)) + 1e-300)
        if keep.all() or not keep.any():
            break
        order = tuple(c for c, k in zip(order, keep, strict=True) if k)
    return SparseFit(order, tuple((coef / norms).tolist()), rel)


def _best_pairs(a_n: Array, t: Array, count: int, limit: int = PAIR_LIMIT) -> list[tuple[int, int]]:
    """The ``count`` column pairs that explain most of ``t`` (exhaustive, via the Gram matrix).

    Smooth one-variable columns (log(1+x), log(1-x), ...) are nearly collinear, so a greedy
    first pick is often wrong while the right pair is exact; checking all pairs fixes that.
    """
    m = a_n.shape[1]
    if m < 2 or m > limit:
        return []
    g = a_n.T @ a_n
    b = a_n.T @ t
    d = np.diag(g)
    det = d[:, None] * d[None, :] - g**2
    with np.errstate(all="ignore"):
        quad = (
            b[:, None] ** 2 * d[None, :]
            - 2 * b[:, None] * b[None, :] * g
            + b[None, :] ** 2 * d[:, None]
        ) / det
    quad[~(det > 1e-9)] = -np.inf
    quad[np.tril_indices(m)] = -np.inf
    flat = np.argpartition(-quad.ravel(), count)[:count]
    flat = flat[np.argsort(-quad.ravel()[flat], kind="stable")]
    return [(int(i // m), int(i % m)) for i in flat if np.isfinite(quad.ravel()[i])]


def _screened_pairs(a_n: Array, t: Array, count: int, width: int = SCREEN) -> list[tuple[int, int]]:
    """The ``count`` best pairs with one member among the ``width`` columns that explain
    most of ``t`` alone, each paired with every column (too many columns for all pairs).

    A law's dominant factor is among the best single columns, but its second factor often
    explains little alone (``log|1 - a**2|`` beside ``log|1 + a*cos(t)|``): a greedy second
    pick that follows the best first one misses it, and an exact pair score does not.
    """
    m = a_n.shape[1]
    if m < 2:
        return []
    b = a_n.T @ t
    sq = np.sum(a_n * a_n, axis=0)
    single = np.where(sq > 0, b**2 / np.where(sq > 0, sq, 1.0), -np.inf)
    top = np.argsort(-single, kind="stable")[: min(width, m)]
    top = top[np.isfinite(single[top]) & (single[top] > 0)]
    if top.size == 0:
        return []
    q = a_n[:, top] / np.sqrt(sq[top])
    g = q.T @ a_n  # width x m: each top column against every column
    qt = q.T @ t
    num = b[None, :] - qt[:, None] * g
    left = sq[None, :] - g**2
    with np.errstate(all="ignore"):
        gain = np.where(left > 1e-10 * np.maximum(sq[None, :], 1e-300), num**2 / left, -np.inf)
    gain[np.arange(top.size), top] = -np.inf
    total = qt[:, None] ** 2 + gain  # explained norm² of each pair
    flat = np.argsort(-total.ravel(), kind="stable")
    out: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for f in flat[: 4 * count]:
        if not np.isfinite(total.ravel()[f]):
            break
        i, j = int(top[f // m]), int(f % m)
        pair = (min(i, j), max(i, j))
        if pair not in seen:
            seen.add(pair)
            out.append(pair)
            if len(out) == count:
                break
    return out


@dataclass
class _State:
    """A selection with its orthonormal basis, residual and columns' unexplained norms."""

    rel: float
    cols: tuple[int, ...]
    resid: Array
    basis: Array  # rows x len(cols), orthonormal
    left: Array  # per column: squared norm orthogonal to the basis


def _child(st: _State, j: int, a_n: Array, scale: float) -> _State | None:
    """Add column j (Gram-Schmidt, twice for stability); O(rows x columns) work."""
    q = a_n[:, j].copy()
    for _ in range(2):
        if st.basis.shape[1]:
            q -= st.basis @ (st.basis.T @ q)
    norm = float(np.linalg.norm(q))
    if norm <= 1e-7:
        return None
    q /= norm
    resid = st.resid - (q @ st.resid) * q
    left = st.left - (q @ a_n) ** 2
    basis = np.concatenate([st.basis, q[:, None]], axis=1)
    cols = tuple(sorted((*st.cols, j)))
    return _State(float(np.linalg.norm(resid)) / scale, cols, resid, basis, left)


def _scores(st: _State, a_n: Array, sq: Array) -> Array:
    """Orthogonal-least-squares gain of adding each column: judged by the column's part
    orthogonal to the selection, not by its raw correlation with the residual."""
    num = a_n.T @ st.resid
    ok = st.left > 1e-10 * np.maximum(sq, 1e-300)
    out = np.full(num.shape, -1.0)
    out[ok] = num[ok] ** 2 / st.left[ok]
    return out


def sparse_fit(
    a: Array,
    t: Array,
    max_terms: int = 6,
    beam: int = 4,
    tol: float = 1e-9,
    forced: tuple[int, ...] = (),
    line: tuple[int, ...] = (),
) -> list[SparseFit]:
    """Sparse fits of ``t`` by columns of ``a``, best first (first one exact when found).

    Columns must be finite. ``forced`` columns (an intercept) are in every selection.
    ``line`` is a selection the pursuit always follows besides its beam (a smaller
    library's best short fit): it joins the beam at its size, and its best extension at
    every later step, however poorly it ranks there. Returns the best selection found at
    every size, so callers also get near misses.
    """
    a_orig, t_orig = a, t
    scale = float(np.linalg.norm(t - t.mean())) or float(np.linalg.norm(t)) or 1.0
    start: tuple[int, ...] = tuple(sorted(forced))
    if start:
        # Score columns by what they add beyond the forced ones (e.g. centred, for an intercept).
        basis, _ = np.linalg.qr(a[:, list(start)])
        a = a - basis @ (basis.T @ a)
        a[:, list(start)] = 0.0
        t = t - basis @ (basis.T @ t)
        rel0 = float(np.linalg.norm(t)) / scale
        if rel0 < tol:
            return [_final(a_orig, t_orig, start, rel0)]
    # The forced columns alone are a fit too: on a noisy target, often the law itself.
    results: list[SparseFit] = [_final(a_orig, t_orig, start, rel0)] if start else []
    norms = np.linalg.norm(a, axis=0)
    norms[norms <= 1e-9 * (norms.max(initial=0.0) + 1e-300)] = np.inf
    a_n = a / norms
    sq = np.sum(a_n * a_n, axis=0)
    root = _State(math.inf, (), t, np.zeros((t.size, 0)), sq.copy())
    states: list[_State] = [root]
    seen: set[tuple[int, ...]] = {()}
    seeds: list[tuple[int, int]] = []
    if max_terms >= 2:
        seeds = _best_pairs(a_n, t, beam) if a_n.shape[1] <= PAIR_LIMIT else []
        seeds = seeds or _screened_pairs(a_n, t, beam)
    line = tuple(sorted(set(line) - set(start)))
    kept: _State | None = None
    for step in range(max_terms):
        grown: list[_State] = []
        for i, j in seeds if step == 1 else []:
            first = _child(root, i, a_n, scale)
            pair = _child(first, j, a_n, scale) if first is not None else None
            if pair is not None and pair.cols not in seen:
                seen.add(pair.cols)
                grown.append(pair)
        pending: list[tuple[float, tuple[int, ...], _State, int]] = []
        for st in states:
            score = _scores(st, a_n, sq)
            score[list(st.cols)] = -1.0
            k = min(beam, score.size)
            top = np.argpartition(-score, k - 1)[:k]
            base = float(st.resid @ st.resid)
            for j in sorted(top.tolist(), key=lambda i: (-score[i], i)):
                key = tuple(sorted((*st.cols, j)))
                if key in seen or score[j] <= 0:
                    continue
                seen.add(key)
                rel = math.sqrt(max(base - float(score[j]), 0.0)) / scale
                pending.append((rel, key, st, j))
        pending.sort(key=lambda p: (p[0], p[1]))
        for _, _, st, j in pending[:beam]:  # only survivors pay for their column update
            child = _child(st, j, a_n, scale)
            if child is not None:
                grown.append(child)
        kept = _follow(kept, root, line, step, a_n, sq, scale)
        if kept is not None and kept.cols not in seen:
            seen.add(kept.cols)
            grown.append(kept)
        if not grown:
            break
        grown.sort(key=lambda s: (s.rel, s.cols))
        states = grown[:beam]
        if kept is not None and all(st.cols != kept.cols for st in states):
            states.append(kept)
        best = states[0]
        results.append(_final(a_orig, t_orig, (*start, *best.cols), best.rel))
        if best.rel < tol:
            break
    results.sort(
        key=lambda f: (
            f.rel_residual >= tol,
            len(f.columns) if f.rel_residual < tol else 0,
            f.rel_residual,
        )
    )
    return results


def _follow(
    kept: _State | None,
    root: _State,
    line: tuple[int, ...],
    step: int,
    a_n: Array,
    sq: Array,
    scale: float,
) -> _State | None:
    """The followed line's state after ``step``: the line itself at its size, then its
    best one-column extension at each step."""
    if not line or step < len(line) - 1:
        return None
    if step == len(line) - 1:
        st: _State | None = root
        for j in line:
            st = _child(st, j, a_n, scale) if st is not None else None
        return st
    if kept is None:
        return None
    score = _scores(kept, a_n, sq)
    score[list(kept.cols)] = -1.0
    j = int(np.argmax(score))
    return _child(kept, j, a_n, scale) if score[j] > 0 else None


def tiered_fit(
    a: Array,
    t: Array,
    tiers: list[int],
    max_terms: int,
    beam: int,
    forced: tuple[int, ...],
    level: int = 9,
) -> list[SparseFit]:
    """Fit on growing column prefixes (libraries ordered simplest first); stop when exact.

    ``level`` caps how many tiers are tried (0: the first only). A small library first keeps
    greedy selection from preferring a complex column that happens to correlate well with a
    sum of simple ones.
    """
    out: list[SparseFit] = []
    sizes = sorted({*tiers, a.shape[1]})
    for size in sizes[: level + 1]:
        if size <= len(forced):
            continue
        fits = sparse_fit(a[:, :size], t, max_terms=max_terms, beam=beam, forced=forced)
        out = fits + out
        if fits and fits[0].rel_residual < 1e-9:
            return fits
    out.sort(key=lambda f: f.rel_residual)
    return out
