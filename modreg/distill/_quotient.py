"""Quotients of multilinear polynomials in a few atoms: T(z) = g * P(a) / Q(a).

Relativistic aberration, ``cos(theta1) = (cos(theta2) - b)/(1 - b*cos(theta2))``, is such a
quotient: numerator and denominator are linear in each of two atoms, ``b`` and
``cos(theta2)``. A greedy pursuit over a large library misses it, because no one or two of
its three columns explains much of the target alone. So here the atoms are searched
exhaustively instead: for every set of up to three atoms (powers of one variable, cos and sin
of a variable or a difference), optionally times one angular factor ``g``, the quotient is
fitted with all its multilinear monomials at once, as a batch of small least-squares problems
on a row subsample. The sets that fit near-exactly go to the sparse rational pursuit, which
keeps the few monomials the law uses and snaps their coefficients.

Near-exact, or within the target's own error: on a network teacher a set passes when its
residual is within :data:`SCREEN_NOISE` times the error the screened rows carry, so the
quotient is found to the teacher's precision and settled like any other law.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from modreg.distill._library import Recipe, recipe_matrix

__all__ = ["SCREEN_WORK", "Quotient", "screen_quotients"]

Array = NDArray[np.float64]
F = Fraction
SCREEN_WORK = 32000  # most quotients screened per target (simplest first): bounds the work
SCREEN_ROWS = 32  # rows of the batched screen (a quotient has at most 15 columns)
SCREEN_NEAR = 1e-7  # relative residual of a set worth a sparse pursuit
SCREEN_NOISE = 2.0  # ... or this many times the noise of the screened rows (a teacher)
KEEP = 3  # screened sets handed on, best first
CHECK_ROWS, CHECK_HITS = 256, 64  # a noisy target's best hits are checked on more rows
_POWERS = (F(1), F(-1), F(2), F(-2), F(1, 2), F(-1, 2))
_CHUNK = 512  # sets per batched QR

Quotient = tuple[list[Recipe], list[Recipe]]  # numerator and denominator columns
Hit = tuple[float, int, tuple[int, ...], Recipe | None]  # residual, size, atom set, factor


def _atoms(v: Array) -> list[Recipe]:
    """Powers of one variable, then cos and sin of each variable and each difference."""
    k = v.shape[1]
    out: list[Recipe] = []
    for i in range(k):
        positive = bool(np.all(v[:, i] > 0))
        for e in _POWERS:
            if e.denominator == 1 or positive:
                out.append(("mono", tuple(e if j == i else F(0) for j in range(k))))
    inners: list[Recipe] = [("mono", tuple(F(int(j == i)) for j in range(k))) for i in range(k)]
    inners += [("diff", a, b) for a, b in itertools.combinations(range(k), 2)]
    out += [("fn", f, 0, r) for r in inners for f in ("cos", "sin")]
    return out


def _product(parts: Sequence[Recipe]) -> Recipe:
    """One recipe for a product of atoms (powers merged into one monomial)."""
    monos = [r for r in parts if r[0] == "mono"]
    rest = [r for r in parts if r[0] not in ("mono", "one")]
    factors: list[Recipe] = []
    if monos:
        exps = tuple(sum((r[1][i] for r in monos), F(0)) for i in range(len(monos[0][1])))
        if any(exps):
            factors.append(("mono", exps))
    factors += rest
    if not factors:
        return ("one",)
    out = factors[0]
    for r in factors[1:]:
        out = ("prod", out, r)
    return out


def _valid(atoms: Sequence[Recipe]) -> bool:
    """No two powers of one variable whose product could be constant or repeat a monomial."""
    seen: dict[int, list[Fraction]] = {}
    for r in atoms:
        if r[0] == "mono":
            i = next(j for j, e in enumerate(r[1]) if e)
            seen.setdefault(i, []).append(r[1][i])
    return all(len(es) == 1 or (len(es) == 2 and sum(es) != 0) for es in seen.values())


def _sets(atoms: list[Recipe], size: int) -> list[tuple[int, ...]]:
    """The valid sets of ``size`` atoms."""
    combos = itertools.combinations(range(len(atoms)), size)
    return [s for s in combos if _valid([atoms[j] for j in s])]


def _subsets(size: int) -> list[tuple[int, ...]]:
    """Index subsets of ``size`` atoms: the multilinear monomials, constant first."""
    return [s for n in range(size + 1) for s in itertools.combinations(range(size), n)]


def screen_quotients(v: Array, t: Array, noise: Array | None = None) -> list[Quotient]:
    """Atom sets (and an optional factor) whose quotient fits ``t`` near-exactly.

    ``v`` is rows x working variables, ``t`` the (transformed) target on the same rows,
    ``noise`` the error each row of ``t`` carries (None for exact data).
    Returns, best first, at most :data:`KEEP` column sets for the rational pursuit: the
    numerator's recipes (the factor times every monomial, the factor alone first) and the
    denominator's (every non-constant monomial).
    """
    atoms = _atoms(v)
    if not atoms or t.size < 8:
        return []
    vals = recipe_matrix(atoms, v)
    good = np.all(np.isfinite(vals), axis=0) & (np.ptp(vals, axis=0) > 0)
    atoms = [r for r, ok in zip(atoms, good, strict=True) if ok]
    vals = vals[:, good]
    # Angular factors only (a dipole's cos(theta)); a power factor would leave the atoms' span.
    factors: list[Recipe | None] = [None]
    factors += [r for r in atoms if r[0] == "fn" and r[3][0] == "mono"]
    rows = np.linspace(0, t.size - 1, min(SCREEN_ROWS, t.size)).astype(np.int64)
    tr, vr = t[rows], vals[rows]
    scale, near = _scale_and_near(tr, None if noise is None else noise[rows])
    hits: list[Hit] = []
    work = SCREEN_WORK
    for size in (1, 2, 3):
        sets = _sets(atoms, size)
        monos = _subsets(size)
        for factor in factors:
            g = np.ones(rows.size) if factor is None else vals[rows, atoms.index(factor)]
            for lo in range(0, min(len(sets), work), _CHUNK):
                chunk = np.array(sets[lo : min(lo + _CHUNK, work)])
                res = _screen(vr, tr, g, chunk, monos) / scale
                for j in np.flatnonzero(res <= near):
                    hits.append((float(res[j]), size, tuple(int(a) for a in chunk[j]), factor))
            work -= min(len(sets), work)
        if hits or work <= 0:
            break  # the fewest atoms that fit
    if noise is not None:
        hits = _checked(hits, vals, t, noise, rows, atoms)
    hits.sort(key=lambda h: (h[1], h[3] is not None, h[0]))
    return [_columns([atoms[j] for j in s], factor) for _, _, s, factor in hits[:KEEP]]


def _scale_and_near(tr: Array, noise: Array | None) -> tuple[float, float]:
    """The norm residuals are measured against (of the centred target rows), and the
    relative residual a set may have: near-exact, or within the rows' own noise."""
    scale = float(np.linalg.norm(tr - tr.mean())) or 1.0
    if noise is None:
        return scale, SCREEN_NEAR
    return scale, max(SCREEN_NEAR, SCREEN_NOISE * float(np.linalg.norm(noise)) / scale)


def _checked(
    hits: list[Hit],
    vals: Array,
    t: Array,
    noise: Array,
    screened: NDArray[np.int64],
    atoms: list[Recipe],
) -> list[Hit]:
    """The screen's hits on a noisy target, refitted on :data:`CHECK_ROWS` other rows: with
    15 columns on 32 rows, many sets reach a teacher's error level by fitting its error; on
    fresh rows only the law's own set stays within it. Each keeps its new residual."""
    rows = np.setdiff1d(
        np.linspace(0, t.size - 1, min(CHECK_ROWS, t.size)).astype(np.int64), screened
    )
    if rows.size < 2 * SCREEN_ROWS:
        return hits
    tr, vr = t[rows], vals[rows]
    scale, near = _scale_and_near(tr, noise[rows])
    out: list[Hit] = []
    for _, size, chosen, factor in sorted(hits, key=lambda h: h[0])[:CHECK_HITS]:
        g = np.ones(rows.size) if factor is None else vr[:, atoms.index(factor)]
        res = float(_screen(vr, tr, g, np.array([chosen]), _subsets(size))[0]) / scale
        if res <= near:
            out.append((res, size, chosen, factor))
    return out


def _screen(
    vr: Array, tr: Array, g: Array, chunk: NDArray[np.int64], monos: list[tuple[int, ...]]
) -> Array:
    """Residual norms of ``t = g*P - t*(Q - 1)`` for a chunk of atom sets (batched QR)."""
    a = vr[:, chunk]  # rows x sets x size
    cols = []
    for m in monos:
        prod = np.prod(a[:, :, list(m)], axis=2) if m else np.ones(a.shape[:2])
        cols.append(g[:, None] * prod)
        if m:
            cols.append(-tr[:, None] * (prod - prod.mean(axis=0)))
    design = np.stack(cols, axis=2).transpose(1, 0, 2)  # sets x rows x columns
    with np.errstate(all="ignore"):
        norms = np.linalg.norm(design, axis=1, keepdims=True)
        design = design / np.where(norms > 0, norms, 1.0)
        q, r = np.linalg.qr(design)
    # A rank-deficient set (dependent atoms) would look better than it is: skip it.
    diag = np.abs(np.diagonal(r, axis1=1, axis2=2))
    full = np.all(diag > 1e-9, axis=1)
    proj = np.einsum("srk,r->sk", q, tr)
    res = np.sqrt(np.maximum(float(tr @ tr) - np.sum(proj**2, axis=1), 0.0))
    return np.where(full & np.all(np.isfinite(diag), axis=1), res, np.inf)


def _columns(atoms: list[Recipe], factor: Recipe | None) -> Quotient:
    num: list[Recipe] = []
    den: list[Recipe] = []
    for m in _subsets(len(atoms)):
        mono = _product([atoms[j] for j in m])
        num.append(mono if factor is None else _product([factor, mono]))
        if m:
            den.append(mono)
    return num, den
