"""Expression-tree search: bottom-up enumeration of small trees, scored as z ~ a + b*t.

The last resort after the term libraries: every tree over the working variables (and the
constants 1 and 2) with unary ops {sqrt, exp, log, sin, cos, square, inverse} and binary ops
{+, -, *, /} is built size by size (node count), all trees of a size at once as rows of a
numpy array evaluated on a row subsample. Trees with the same values (a*b and b*a, sqrt(a**2)
and a) are merged by a random projection of their values (semantic hashing); each size keeps
at most ``BEAM`` trees, those most correlated with the target. Every tree t is fitted as
z = a + b*t by linear least squares (vectorised over all trees of a size); the promising ones
are rebuilt as sympy trees, refitted on all rows, snapped and scored. The largest size is
streamed (never stored) and split between ``PARTS`` tasks by chunk index, so two workers share
it and the answer depends only on the seed and the task order. The search is bounded by work,
not time: at most ``work`` trees are evaluated per task, so the same input gives the same trees
on any machine and under any load.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import sympy
from numpy.typing import NDArray

from modreg.distill._expr import evaluate
from modreg.distill._problem import Candidate, Problem, Workspace, score_candidate
from modreg.distill._snap import float_constant, snap_constant

__all__ = ["PARTS", "fit_trees"]

Array = NDArray[np.float64]
Ints = NDArray[np.int64]
PARTS = 2  # fixed, so the split (and the answer) does not depend on the number of workers
MAX_SIZE = 7
BEAM = 3000
CHUNK = 20000  # rows of trees evaluated at once
N_ROWS = 200
TRY_REL = 1e-6  # subsample relative residual below which a tree is rebuilt and scored
BIG = 1e8

_UNARY: list[tuple[str, Callable[[Array], Array], Callable[[sympy.Expr], sympy.Expr]]] = [
    ("sqrt", lambda v: np.sqrt(np.where(v >= 0, v, np.nan)), sympy.sqrt),
    ("exp", np.exp, sympy.exp),
    ("log", lambda v: np.log(np.where(v > 0, v, np.nan)), sympy.log),
    ("sin", np.sin, sympy.sin),
    ("cos", np.cos, sympy.cos),
    ("square", np.square, lambda e: e**2),
    ("inverse", lambda v: 1.0 / np.where(v != 0, v, np.nan), lambda e: 1 / e),
]
_BINARY: list[tuple[str, bool, Callable[[Array, Array], Array], Callable[..., sympy.Expr]]] = [
    ("add", True, np.add, lambda a, b: a + b),
    ("mul", True, np.multiply, lambda a, b: a * b),
    ("sub", False, np.subtract, lambda a, b: a - b),
    ("div", False, np.divide, lambda a, b: a / b),
]

# A tree node: (kind, op index, left id, right id); kind 0 = variable, 1 = constant, 2 = unary,
# 3 = binary. Ids index the flat node list of one search.
Node = tuple[int, int, int, int]
_CONSTS = (1.0, 2.0)


class _Search:
    def __init__(self, ws: Workspace, problem: Problem, part: int, work: int) -> None:
        self.ws, self.problem, self.part, self.work = ws, problem, part, work
        self.spent = 0
        rows = problem.sub[:: max(1, problem.sub.size // N_ROWS)]
        self.w = ws.w_values[rows]
        z = ws.z(problem)[rows]
        self.zc = z - z.mean()
        self.zz = float(z @ z)
        self.zcn = float(np.sqrt(self.zc @ self.zc))
        self.proj = np.random.default_rng(12345).standard_normal(rows.size)
        self.nodes: list[Node] = []
        self.levels: dict[int, tuple[Array, NDArray[np.int64]]] = {}  # size -> values, ids
        self.seen: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.exact: list[int] = []  # node ids worth rebuilding (small residual)
        self.best: list[tuple[float, int]] = []  # (residual, node id) of the best trees

    def out_of_work(self) -> bool:
        return self.spent >= self.work

    # -- hashing and scoring -------------------------------------------------------------
    def _keys(self, v: Array) -> NDArray[np.int64]:
        p = v @ self.proj
        with np.errstate(all="ignore"):
            expo = np.floor(np.log10(np.abs(p) + 1e-300))
            sig = np.round(p / 10.0 ** (expo - 8))
        return (sig.astype(np.int64) * 1000 + expo.astype(np.int64) + 500).astype(np.int64)

    def _residuals(self, v: Array) -> tuple[Array, Array]:
        """Relative residual of z ~ a + b*t for each row t, and |corr(t, z)|."""
        vc = v - v.mean(axis=1, keepdims=True)
        vv = np.einsum("ij,ij->i", vc, vc)
        vz = vc @ self.zc
        with np.errstate(all="ignore"):
            corr = np.abs(vz) / np.sqrt(vv) / max(self.zcn, 1e-300)
            ssr = np.maximum(self.zc @ self.zc - vz**2 / vv, 0.0)
            rel = np.sqrt(ssr / max(self.zz, 1e-300))
        return np.nan_to_num(rel, nan=np.inf), np.nan_to_num(corr, nan=0.0)

    def _admit(self, v: Array, specs: Ints) -> tuple[Array, Ints, Array]:
        """Keep finite, non-constant, new rows; returns values, specs and residuals."""
        with np.errstate(all="ignore"):
            ok = np.all(np.isfinite(v), axis=1) & (np.max(np.abs(v), axis=1) < BIG)
            ok &= np.ptp(v, axis=1) > 1e-9 * (np.max(np.abs(v), axis=1) + 1e-300)
        v, specs = v[ok], specs[ok]
        if v.shape[0] == 0:
            return v, specs, np.zeros(0)
        keys = self._keys(v)
        _, first = np.unique(keys, return_index=True)
        first = np.sort(first)
        first = first[~np.isin(keys[first], self.seen)]
        v, specs, keys = v[first], specs[first], keys[first]
        self.seen = np.concatenate([self.seen, keys])
        rel, corr = self._residuals(v)
        return v, specs, np.stack([rel, corr], axis=1)

    def _register(self, specs: Ints, scores: Array) -> Ints:
        base = len(self.nodes)
        self.nodes += [(int(a), int(b), int(c), int(d)) for a, b, c, d in specs]
        ids = np.arange(base, base + specs.shape[0], dtype=np.int64)
        rel = scores[:, 0]
        self.exact += [int(i) for i in ids[rel < TRY_REL]]
        if rel.size:
            j = int(np.argmin(rel))
            self.best.append((float(rel[j]), int(ids[j])))
        return ids

    # -- enumeration ---------------------------------------------------------------------
    def _chunks(self, size: int) -> Iterator[tuple[Array, Ints]]:
        """All trees of ``size`` from the stored smaller ones, as (values, specs) chunks."""
        if size - 1 in self.levels:
            vals, ids = self.levels[size - 1]
            for u, (_, fn, _) in enumerate(_UNARY):
                for i0 in range(0, ids.size, CHUNK):
                    with np.errstate(all="ignore"):
                        v = fn(vals[i0 : i0 + CHUNK])
                    sub = ids[i0 : i0 + CHUNK]
                    specs = np.stack([np.full_like(sub, 2), np.full_like(sub, u), sub, sub], 1)
                    yield v, specs
        for s1 in range(1, size - 1):
            s2 = size - 1 - s1
            if s1 not in self.levels or s2 not in self.levels:
                continue
            (va, ia), (vb, ib) = self.levels[s1], self.levels[s2]
            step = max(1, CHUNK // max(1, ib.size))
            for b, (_, comm, op, _) in enumerate(_BINARY):
                if comm and s1 > s2:
                    continue
                for i0 in range(0, ia.size, step):
                    with np.errstate(all="ignore"):
                        v = op(va[i0 : i0 + step, None, :], vb[None, :, :])
                    v = v.reshape(-1, va.shape[1])
                    left = np.repeat(ia[i0 : i0 + step], ib.size)
                    right = np.tile(ib, min(step, ia.size - i0))
                    specs = np.stack([np.full_like(left, 3), np.full_like(left, b), left, right], 1)
                    yield v, specs

    def leaves(self) -> None:
        k = self.w.shape[1]
        specs = [(0, i, 0, 0) for i in range(k)] + [(1, j, 0, 0) for j in range(len(_CONSTS))]
        v = np.concatenate([self.w.T, np.outer(_CONSTS, np.ones(self.w.shape[0]))])
        keys = self._keys(v)
        self.seen = keys.copy()
        ids = np.arange(len(specs), dtype=np.int64)
        self.nodes += specs
        if k:
            scores = np.stack(self._residuals(self.w.T), axis=1)
            self.exact += [i for i in range(k) if scores[i, 0] < TRY_REL]
        self.levels[1] = (v, ids)

    def level(self, size: int, store: bool) -> bool:
        """Enumerate one size; returns False when the work allowance ran out."""
        kept_v: list[Array] = []
        kept_ids: list[NDArray[np.int64]] = []
        kept_corr: list[Array] = []
        for n, (v, specs) in enumerate(self._chunks(size)):
            if self.out_of_work():
                return False
            self.spent += v.shape[0]
            if not store and n % PARTS != self.part:
                continue
            v, specs, scores = self._admit(v, specs)
            if not specs.size:
                continue
            ids = self._register(specs, scores)
            if store:
                kept_v.append(v)
                kept_ids.append(ids)
                kept_corr.append(scores[:, 1])
                if sum(x.size for x in kept_ids) > 2 * BEAM:
                    kept_v, kept_ids, kept_corr = _prune(kept_v, kept_ids, kept_corr)
            if self.exact and not store:
                return True
        if store and kept_ids:
            kept_v, kept_ids, kept_corr = _prune(kept_v, kept_ids, kept_corr)
            self.levels[size] = (kept_v[0], kept_ids[0])
        return True

    # -- rebuilding ----------------------------------------------------------------------
    def expr(self, node_id: int) -> sympy.Expr:
        kind, op, a, b = self.nodes[node_id]
        if kind == 0:
            return self.ws.w_exprs[op]
        if kind == 1:
            return sympy.Integer(int(_CONSTS[op]))
        if kind == 2:
            return _UNARY[op][2](self.expr(a))
        return _BINARY[op][3](self.expr(a), self.expr(b))

    def candidates(self, node_id: int) -> list[Candidate]:
        """z = a + b*t refitted on all rows, constants snapped, scored (exact first)."""
        problem, ws = self.problem, self.ws
        t = self.expr(node_id)
        tv = evaluate(t, problem.env, problem.y.size)
        z = ws.z(problem)
        if not (np.all(np.isfinite(tv)) and np.all(np.isfinite(z))):
            return []
        design = np.stack([np.ones_like(tv), tv], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, z, rcond=None)
        scale = float(np.sqrt(np.mean(z**2)))
        out: list[Candidate] = []
        for snap in (True, False):
            ca, cb = (_coef(float(a), scale, snap), _coef(float(b), scale, snap))
            cand = score_candidate(ws.prefactor * (ca + cb * t), problem, f"{ws.label}:trees")
            if cand is not None:
                out.append(cand)
                if cand.exact:
                    break
        return out


def _coef(value: float, scale: float, snap: bool) -> sympy.Expr:
    if abs(value) < 1e-10 * scale:
        return sympy.Integer(0)
    if snap:
        snapped = snap_constant(value, rel_tol=1e-6)
        if snapped is not None:
            return snapped
        return float_constant(value)
    return sympy.Float(float(f"{value:.15g}"), 15)


def _prune(
    vals: list[Array], ids: list[NDArray[np.int64]], corr: list[Array]
) -> tuple[list[Array], list[NDArray[np.int64]], list[Array]]:
    v, i, c = np.concatenate(vals), np.concatenate(ids), np.concatenate(corr)
    if i.size > BEAM:
        keep = np.sort(np.argsort(-c, kind="stable")[:BEAM])
        v, i, c = v[keep], i[keep], c[keep]
    return [v], [i], [c]


def fit_trees(ws: Workspace, problem: Problem, part: int, work: int) -> list[Candidate]:
    """Enumerate expression trees over the working variables, at most ``work`` of them."""
    if ws.w_values.shape[1] == 0 or not np.all(np.isfinite(ws.z(problem))) or work <= 0:
        return []
    search = _Search(ws, problem, part, work)
    search.leaves()
    out: list[Candidate] = []
    tried: set[int] = set()
    done = True
    for size in range(2, MAX_SIZE + 1):
        if not search.exact:
            done = search.level(size, store=size < MAX_SIZE)
        for node_id in search.exact:
            if node_id in tried or len(tried) > 20:
                continue
            tried.add(node_id)
            got = search.candidates(node_id)
            out += got
            if any(c.exact for c in got):
                return out
        search.exact.clear()
        if not done:
            break
    best = sorted(search.best)[:3]
    for rel, node_id in best:
        if math.isfinite(rel) and node_id not in tried:
            out += search.candidates(node_id)
    return out
