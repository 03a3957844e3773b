"""Term libraries: candidate columns (numbers + a recipe to rebuild each one symbolically).

Most physical laws, once divided by their dimensional prefactor, are a short sum of products of
powers, or a product of powers of simple "primitive factors" such as ``1 - v**2/c**2``,
``sin(theta/2)`` or ``exp(x) - 1``. Linear least squares over a library of such columns finds
them in milliseconds. Columns are computed on a row subsample; recipes (small tuples) are turned
into sympy only for the few selected columns.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import sympy
from numpy.typing import NDArray

__all__ = [
    "Columns",
    "Recipe",
    "gpl_columns",
    "ll_columns",
    "monomials",
    "recipe_matrix",
    "recipe_values",
    "to_sympy",
]

Array = NDArray[np.float64]
Recipe = tuple[Any, ...]
Exps = tuple[Fraction, ...]

F = Fraction
_EXPS_FULL = (F(-2), F(-1), F(-1, 2), F(1, 2), F(1), F(2))
_EXPS_INT = (F(-2), F(-1), F(1), F(2))
_EXPS_UNIT = (F(-1), F(1))
_PI = float(np.pi)
SCALES: tuple[tuple[float, sympy.Expr], ...] = (
    (1.0, sympy.Integer(1)),
    (2.0, sympy.Integer(2)),
    (0.5, sympy.Rational(1, 2)),
    (_PI, sympy.pi),
    (2 * _PI, 2 * sympy.pi),
    (1 / (2 * _PI), 1 / (2 * sympy.pi)),
    (1 / _PI, 1 / sympy.pi),
)
BINOM = tuple(F(v) for v in (1, -1, 2, -2, F(1, 2), F(-1, 2), 3, -3, F(1, 3), F(-1, 3)))
_FUNCS: dict[str, tuple[Any, Any]] = {
    "sin": (np.sin, sympy.sin),
    "cos": (np.cos, sympy.cos),
    "tan": (np.tan, sympy.tan),
    "sinh": (np.sinh, sympy.sinh),
    "cosh": (np.cosh, sympy.cosh),
    "tanh": (np.tanh, sympy.tanh),
    "exp": (np.exp, sympy.exp),
    "log": (np.log, sympy.log),
    "cos2": (lambda x: np.cos(x) ** 2, lambda x: sympy.cos(x) ** 2),
}


def monomials(
    k: int, max_vars: int, exps: Sequence[Fraction], positive: Sequence[bool]
) -> Iterator[Exps]:
    """Exponent vectors with 1..max_vars non-zero entries (half powers only on positive vars)."""
    for size in range(1, min(max_vars, k) + 1):
        for idx in itertools.combinations(range(k), size):
            for combo in itertools.product(exps, repeat=size):
                if any(
                    e.denominator != 1 and not positive[i] for i, e in zip(idx, combo, strict=True)
                ):
                    continue
                vec = [F(0)] * k
                for i, e in zip(idx, combo, strict=True):
                    vec[i] = e
                yield tuple(vec)


def mono_values(v: Array, exps: Exps) -> Array:
    out = np.ones(v.shape[0])
    for i, e in enumerate(exps):
        if e == 0:
            continue
        base = v[:, i] ** int(e) if e.denominator == 1 else np.abs(v[:, i]) ** float(e)
        out = out * base
    return out


def recipe_values(r: Recipe, v: Array, memo: dict[Recipe, Array] | None = None) -> Array:
    """Numeric values of a recipe on working-variable columns ``v`` (rows x vars)."""
    if memo is not None:
        hit = memo.get(r)
        if hit is not None:
            return hit
    with np.errstate(all="ignore"):
        out = _values(r, v, memo)
    if memo is not None and r[0] in ("mono", "diff", "fn", "binom"):
        memo[r] = out
    return out


def recipe_matrix(recipes: Sequence[Recipe], v: Array) -> Array:
    """The columns of several recipes (rows x len(recipes))."""
    return np.stack([recipe_values(r, v) for r in recipes], axis=1)


def _values(r: Recipe, v: Array, memo: dict[Recipe, Array] | None) -> Array:
    tag = r[0]
    if tag == "one":
        return np.ones(v.shape[0])
    if tag == "mono":
        return mono_values(v, r[1])
    if tag == "diff":
        return np.asarray(v[:, r[1]] - v[:, r[2]], dtype=np.float64)
    if tag == "binom":
        return 1.0 + float(r[1]) * recipe_values(r[2], v, memo)
    if tag == "fn":
        inner = SCALES[r[2]][0] * recipe_values(r[3], v, memo)
        out = _FUNCS[r[1]][0](inner)
        return np.asarray(out + float(r[4]) if len(r) > 4 else out, dtype=np.float64)
    if tag == "prod":
        return recipe_values(r[1], v, memo) * recipe_values(r[2], v, memo)
    if tag == "pow2":
        return recipe_values(r[1], v, memo) ** 2
    if tag == "logabs":
        return np.asarray(np.log(np.abs(recipe_values(r[1], v, memo))), dtype=np.float64)
    raise ValueError(f"unknown recipe {tag!r}")


def to_sympy(r: Recipe, w: Sequence[sympy.Expr]) -> sympy.Expr:
    """The sympy form of a recipe, given the working variables' sympy expressions ``w``."""
    tag = r[0]
    if tag == "one":
        return sympy.Integer(1)
    if tag == "mono":
        return sympy.Mul(
            *[w[i] ** sympy.Rational(e.numerator, e.denominator) for i, e in enumerate(r[1]) if e]
        )
    if tag == "diff":
        return w[r[1]] - w[r[2]]
    if tag == "binom":
        return 1 + sympy.Rational(r[1].numerator, r[1].denominator) * to_sympy(r[2], w)
    if tag == "fn":
        out = _FUNCS[r[1]][1](SCALES[r[2]][1] * to_sympy(r[3], w))
        return out + sympy.Integer(int(r[4])) if len(r) > 4 else out
    if tag == "prod":
        return to_sympy(r[1], w) * to_sympy(r[2], w)
    if tag == "pow2":
        return to_sympy(r[1], w) ** 2
    if tag == "logabs":
        return sympy.log(sympy.Abs(to_sympy(r[1], w)))
    raise ValueError(f"unknown recipe {tag!r}")


class Columns:
    """A growing column matrix with de-duplication (columns equal up to scale are dropped)."""

    def __init__(self, v: Array, cap: int) -> None:
        self.v = v
        self.cap = cap
        self.blocks: list[Array] = []
        self.recipes: list[Recipe] = []
        self._keys: set[bytes] = set()
        self.tiers: list[int] = []

    def mark(self) -> None:
        """End a tier: fits try the columns up to each mark before adding the next tier."""
        self.tiers.append(len(self.recipes))

    def __len__(self) -> int:
        return len(self.recipes)

    def add(self, r: Recipe, constant_ok: bool = False) -> None:
        self.add_block([r], recipe_values(r, self.v)[:, None], constant_ok)

    def add_block(self, recipes: Sequence[Recipe], block: Array, constant_ok: bool = False) -> None:
        """Add columns ``block`` (rows x len(recipes)), skipping bad, constant and repeated ones."""
        room = self.cap - len(self.recipes)
        if room <= 0 or not recipes:
            return
        with np.errstate(all="ignore"):
            big = np.max(np.abs(block), axis=0)
            ok = big < 1e12
            if not constant_ok:
                ok &= np.ptp(block, axis=0) > 1e-12 * (big + 1e-300)
            head = block[:48]
            norm = np.linalg.norm(head, axis=0)
            ok &= norm > 0
            unit = head / np.where(norm > 0, norm, 1.0)
            lead = unit[np.argmax(np.abs(unit) > 1e-6, axis=0), np.arange(unit.shape[1])]
            keys = np.round(unit * np.sign(lead), 8)
        keep = []
        for j in np.flatnonzero(ok):
            key = keys[:, j].tobytes()
            if key in self._keys:
                continue
            self._keys.add(key)
            keep.append(int(j))
            if len(keep) >= room:
                break
        if keep:
            self.blocks.append(block[:, keep])
            self.recipes.extend(recipes[j] for j in keep)

    def matrix(self) -> Array:
        if not self.blocks:
            return np.zeros((self.v.shape[0], 0))
        return np.concatenate(self.blocks, axis=1)


def _positive(v: Array) -> list[bool]:
    return [bool(np.all(v[:, i] > 0)) for i in range(v.shape[1])]


def _mono_block(v: Array, monos: Sequence[Exps]) -> tuple[list[Recipe], Array]:
    recipes: list[Recipe] = [("mono", m) for m in monos]
    if not monos:
        return recipes, np.zeros((v.shape[0], 0))
    with np.errstate(all="ignore"):
        return recipes, np.stack([mono_values(v, m) for m in monos], axis=1)


def _inners(v: Array, pos: list[bool], with_diffs: bool) -> tuple[list[Recipe], Array]:
    """Arguments of unary functions: single variables and their powers, pairwise differences,
    then two-variable monomials (simplest first, so a cap keeps the likely ones)."""
    k = v.shape[1]
    exps = _EXPS_INT if k <= 6 else _EXPS_UNIT
    recipes, block = _mono_block(v, list(monomials(k, 1, exps, pos)))
    if with_diffs and k >= 2:
        pairs = list(itertools.combinations(range(k), 2))
        recipes += [("diff", a, b) for a, b in pairs]
        diffs = np.stack([v[:, a] - v[:, b] for a, b in pairs], axis=1)
        block = np.concatenate([block, diffs], axis=1)
    two = [m for m in monomials(k, 2, exps, pos) if sum(1 for e in m if e) == 2]
    r2, b2 = _mono_block(v, two)
    return recipes + r2, np.concatenate([block, b2], axis=1)


def _apply(fname: str, s: int, inner: Array, shift: int = 0) -> Array:
    with np.errstate(all="ignore"):
        out = _FUNCS[fname][0](SCALES[s][0] * inner)
    return np.asarray(out + shift, dtype=np.float64)


def ll_columns(v: Array, cap: int = 12000, trig: bool = True) -> Columns:
    """Linear-library columns: constant, monomials, and monomials times sin/cos/exp of simple
    arguments (for sums such as ``I1 + I2 + 2*sqrt(I1*I2)*cos(delta)``)."""
    k = v.shape[1]
    pos = _positive(v)
    cols = Columns(v, cap)
    cols.add(("one",), constant_ok=True)
    cols.add_block(*_mono_block(v, list(monomials(k, 1, _EXPS_FULL, pos))))
    cols.add_block(*_mono_block(v, list(monomials(k, 2, _EXPS_INT, pos))))
    cols.mark()
    cols.add_block(*_mono_block(v, list(monomials(k, 2, _EXPS_FULL, pos))))
    cols.add_block(*_mono_block(v, list(monomials(k, 3, _EXPS_INT, pos))))
    cols.mark()
    if not trig:
        return cols
    i_rec, i_val = _inners(v, pos, with_diffs=True)
    simple = [j for j, r in enumerate(i_rec) if r[0] == "diff" or sum(1 for e in r[1] if e) == 1]
    o1_rec, o1_val = _mono_block(v, list(monomials(k, 1, _EXPS_FULL, pos)))
    # Tier: functions of one variable or difference, times at most one power.
    _trig_block(
        cols, [i_rec[j] for j in simple], i_val[:, simple], o1_rec, o1_val, ("cos", "sin", "cos2")
    )
    cols.mark()
    o_rec, o_val = _mono_block(v, list(monomials(k, 1 if k > 3 else 2, _EXPS_FULL, pos)))
    _trig_block(cols, i_rec[:80], i_val[:, :80], o_rec, o_val, ("cos", "sin", "cos2"))
    cols.mark()
    _trig_block(cols, i_rec[:80], i_val[:, :80], o_rec, o_val, ("exp",))
    return cols


def _trig_block(
    cols: Columns,
    i_rec: list[Recipe],
    i_val: Array,
    o_rec: list[Recipe],
    o_val: Array,
    fnames: Sequence[str],
) -> None:
    """Columns g(s * inner) and power * g(s * inner) for the given functions g."""
    o_rec = [("one",), *o_rec]
    o_val = np.concatenate([np.ones((o_val.shape[0], 1)), o_val], axis=1)
    for fname in fnames:
        for s in range(3 if fname in ("cos", "sin") else 1):
            g = _apply(fname, s, i_val)
            for oi, o in enumerate(o_rec):
                recs: list[Recipe] = [
                    ("fn", fname, s, r) if o[0] == "one" else ("prod", o, ("fn", fname, s, r))
                    for r in i_rec
                ]
                with np.errstate(all="ignore"):
                    block = g * o_val[:, oi : oi + 1]
                cols.add_block(recs, block)


def _sqdiff_block(cols: Columns, v: Array, pos: list[bool]) -> None:
    """(x_a - x_b)**2 times a power of one variable: Gaussians in a difference, for example."""
    k = v.shape[1]
    o_rec, o_val = _mono_block(v, list(monomials(k, 1, _EXPS_INT, pos)))
    o_rec, o_val = [("one",), *o_rec], np.concatenate([np.ones((v.shape[0], 1)), o_val], axis=1)
    for a, b in itertools.combinations(range(k), 2):
        d2 = (v[:, a] - v[:, b]) ** 2
        inner: Recipe = ("pow2", ("diff", a, b))
        recs: list[Recipe] = [inner if o[0] == "one" else ("prod", o, inner) for o in o_rec]
        cols.add_block(recs, d2[:, None] * o_val)


def _trig_binomials(cols: Columns, v: Array) -> None:
    """log|1 + s*g| for simple trig terms g (e.g. 1 + alpha*cos(theta1 - theta2))."""
    lib = ll_columns(v, trig=True)
    lo, hi = lib.tiers[1], lib.tiers[2] if len(lib.tiers) > 2 else len(lib)
    block = lib.matrix()[:, lo:hi]
    for b in BINOM[:6]:
        recs: list[Recipe] = [("logabs", ("binom", b, r)) for r in lib.recipes[lo:hi]]
        with np.errstate(all="ignore"):
            cols.add_block(recs, np.log(np.abs(1.0 + float(b) * block)))


def gpl_columns(v: Array, cap: int = 30000, trig: bool = True) -> Columns:
    """Columns for log|z| = c0 + sum c_j log|phi_j| + sum d_k m_k (generalised power laws).

    phi_j are primitive factors (variables, 1 + s*m, sin/cos/tan/sinh/cosh/tanh/exp-1 of a
    scaled monomial or difference, log of a monomial); m_k are plain monomials (for exp factors).
    """
    k = v.shape[1]
    pos = _positive(v)
    cols = Columns(v, cap)
    cols.add(("one",), constant_ok=True)
    with np.errstate(all="ignore"):
        cols.add_block(
            [("logabs", ("mono", tuple(F(int(i == j)) for j in range(k)))) for i in range(k)],
            np.log(np.abs(v)),
        )
        cols.add_block(*_mono_block(v, list(monomials(k, 1, _EXPS_INT, pos))))
        if k <= 4:  # e.g. -(theta - theta1)**2 / (2 sigma**2) inside an exponential
            cols.add_block(*_mono_block(v, list(monomials(k, 3, _EXPS_INT, pos))))
        _sqdiff_block(cols, v, pos)
        m_rec, m_val = _mono_block(v, list(monomials(k, 2, _EXPS_FULL, pos)))
        for b in BINOM:
            recs: list[Recipe] = [("logabs", ("binom", b, r)) for r in m_rec]
            cols.add_block(recs, np.log(np.abs(1.0 + float(b) * m_val)))
        cols.mark()
        if not trig:
            return cols
        cols.add_block(*_mono_block(v, list(monomials(k, 2, _EXPS_INT, pos))))
        i_rec, i_val = _inners(v, pos, with_diffs=True)
        for fname in ("sin", "cos", "tan", "sinh", "cosh", "tanh"):
            for s in range(len(SCALES)):
                recs = [("logabs", ("fn", fname, s, r)) for r in i_rec]
                cols.add_block(recs, np.log(np.abs(_apply(fname, s, i_val))))
        for s in range(len(SCALES)):
            for shift in (-1, 1):
                recs = [("logabs", ("fn", "exp", s, r, shift)) for r in i_rec]
                cols.add_block(recs, np.log(np.abs(_apply("exp", s, i_val, shift))))
        recs = [("logabs", ("fn", "log", 0, r)) for r in i_rec]
        cols.add_block(recs, np.log(np.abs(_apply("log", 0, i_val))))
        cols.mark()
        _trig_binomials(cols, v)
    return cols
