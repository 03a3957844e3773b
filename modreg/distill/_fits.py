"""Cheap exact fits: sparse linear least squares over term libraries, on transformed targets.

Three families, each a linear problem on a row subsample:

* generalised power law: log|z| = c0 + sum c_j log|phi_j| + sum d_k m_k;
* linear library: T(z) = sum c_j t_j for T in identity, square, inverse, sqrt, log, exp and
  the trigonometric functions and their inverses (so z = T^-1(sum));
* rational: z = (sum a_j p_j) / (1 + sum b_k q_k), linear after multiplying out.

Selected fits are rebuilt symbolically, their constants snapped, and scored on all rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import sympy
from numpy.typing import NDArray

from modreg.distill._expr import evaluate
from modreg.distill._library import (
    Columns,
    Recipe,
    gpl_columns,
    ll_columns,
    recipe_matrix,
    to_sympy,
)
from modreg.distill._problem import (
    Candidate,
    Problem,
    Workspace,
    score_candidate,
    with_scale,
)
from modreg.distill._quotient import screen_quotients
from modreg.distill._snap import float_constant, snap_constant, snap_exponent
from modreg.distill._sparse import SparseFit, sparse_fit, tiered_fit

__all__ = ["fit_constant", "fit_gpl", "fit_ll", "fit_quotient", "fit_rational"]

Array = NDArray[np.float64]
NEAR = 1e-5  # fits this close in the transformed space are worth rebuilding
QUOTIENT_TRANSFORMS = ("id", "cos", "sin", "tan")  # a quotient, or an angle's function of one
SEED_TERMS = 4  # columns (intercept included) of a small tier's fit kept as a larger one's start
SPARSE_TERMS = 5  # columns (intercept included) of the sparse fits rebuilt for a noisy target
SIGN_SLACK = 0.1  # a noisy fit's power this near an odd integer may keep its factor's sign ...
SIGN_AGREE = 0.9  # ... when the target has that sign on this share of the rows


def _sub(ws: Workspace, problem: Problem) -> tuple[Array, Array]:
    return ws.w_values[problem.sub], ws.z(problem)[problem.sub]


def _row_noise(ws: Workspace, problem: Problem) -> Array | None:
    """The error each subsample row of ``ws.z`` carries: the target's noise over the
    prefactor (None for exact data)."""
    if problem.noise <= 0:
        return None
    with np.errstate(all="ignore"):
        out: Array = problem.noise / np.abs(ws.pref_values[problem.sub])
    return out


def fit_constant(ws: Workspace, problem: Problem) -> list[Candidate]:
    """y = C * prefactor (all the dimensional analysis leaves is a number)."""
    return with_scale(ws.prefactor, problem, f"{ws.label}:const")


def _coef(value: float) -> sympy.Expr:
    snapped = snap_constant(value, rel_tol=1e-6)
    return snapped if snapped is not None else float_constant(value)


def _gpl_shape(
    fit: SparseFit, cols: Columns, ws: Workspace, problem: Problem, sign: Array | None = None
) -> sympy.Expr:
    """The power law of a log fit. ``sign``: the sign of the fitted target on the subsample
    rows, for a noisy target, whose fitted exponents are never exact: a power within
    :data:`SIGN_SLACK` of an odd integer n of a factor whose sign the target follows keeps
    that sign, as ``phi**n * Abs(phi)**(c - n)`` (settling drops the second factor), so
    ``1 + sqrt(1 + x)*cos(t)`` is not lost to ``|cos(t)|**0.98``."""
    factors: list[sympy.Expr] = []
    for j, c in zip(fit.columns, fit.coefs, strict=True):
        r = cols.recipes[j]
        if r[0] == "one":
            continue
        if r[0] != "logabs":
            factors.append(sympy.exp(_coef(c) * to_sympy(r, ws.w_exprs)))
            continue
        phi = to_sympy(r[1], ws.w_exprs)
        e = snap_exponent(c)
        if e is None:
            n = round(c)
            odd = n % 2 == 1 and abs(c - n) < SIGN_SLACK
            if odd and sign is not None and _follows(phi, sign, problem):
                factors.append(phi**n * sympy.Abs(phi) ** float_constant(c - n, exponent=True))
            else:
                factors.append(sympy.Abs(phi) ** float_constant(c, exponent=True))
            continue
        pw = sympy.Rational(e.numerator, e.denominator)
        factors.append(phi**pw if e.denominator == 1 else sympy.Abs(phi) ** pw)
    return sympy.Mul(*factors)


def _follows(phi: sympy.Expr, sign: Array, problem: Problem) -> bool:
    """Whether ``phi`` takes both signs on the subsample and the target follows its sign on
    nearly every row (a teacher's error flips it only where the target is near zero)."""
    env = {name: values[problem.sub] for name, values in problem.env.items()}
    with np.errstate(all="ignore"):
        values = np.sign(evaluate(phi, env, problem.sub.size))
    if not (np.any(values > 0) and np.any(values < 0)):
        return False
    return float(np.mean(values == sign)) >= SIGN_AGREE


def fit_gpl(
    ws: Workspace, problem: Problem, level: int = 9, shifts: bool = False
) -> list[Candidate]:
    """Generalised power law in the primitive factors of the working variables.

    With ``shifts``, on shifted targets T(z) - c instead (c = +-1; T = identity, square,
    inverse, inverse square):
    ``1 + sqrt(1 + x)*cos(t)`` and ``sqrt(1 + a*b**2/c)`` are power laws after the shift.
    """
    v, z = _sub(ws, problem)
    if ws.w_values.shape[1] == 0 or not np.all(np.isfinite(z)):
        return []
    sigma = _row_noise(ws, problem)
    if not shifts:
        return _gpl_on(ws, problem, v, z, level, lambda s: s, "", sigma=sigma)
    out: list[Candidate] = []
    z_all = ws.z(problem)
    for name, fwd, inv in _transforms(z)[:4]:
        for shift in (1, -1):
            with np.errstate(all="ignore"):
                u, u_all = fwd(z) - shift, fwd(z_all) - shift
            if not np.all(np.isfinite(u_all)):
                continue

            def back(s: sympy.Expr, inv: Inverse = inv, shift: int = shift) -> sympy.Expr:
                return inv(shift + s)

            got = _gpl_on(
                ws,
                problem,
                v,
                u,
                min(level, 1 if v.shape[1] <= 4 else 0),
                back,
                f"{name}{shift:+d}",
                u_all,
                None if sigma is None else np.abs(fwd(z + sigma) - fwd(z)),
            )
            out += got
            if any(c.exact for c in got):
                return out
    return out


Inverse = Callable[[sympy.Expr], sympy.Expr]


def _gpl_on(
    ws: Workspace,
    problem: Problem,
    v: Array,
    u: Array,
    level: int,
    back: Inverse,
    tag: str,
    u_all: Array | None = None,
    sigma: Array | None = None,
) -> list[Candidate]:
    """Fit log|u| as a generalised power law; z = back(C * shape) with C fitted on all rows.

    ``sigma`` is the error each row of ``u`` carries (a network teacher's, None for exact
    data): the log fit then weighs its rows as a fit of u itself would (:func:`_log_weights`).
    """
    ok = np.isfinite(u) & (np.abs(u) > 0)
    if ok.sum() < 0.9 * u.size:
        return []
    cols = gpl_columns(v[ok], trig=level > 0)
    forced = tuple(
        j
        for j, r in enumerate(cols.recipes)
        if r[0] == "one" or (r[0] == "logabs" and r[1][0] == "mono")
    )
    matrix, target = cols.matrix(), np.log(np.abs(u[ok]))
    if sigma is not None:
        rows = _log_weights(u[ok], sigma[ok])
        matrix, target = matrix * rows[:, None], target * rows
    fits = tiered_fit(
        matrix,
        target,
        cols.tiers,
        max_terms=5,
        beam=4,
        forced=forced,
        level=level,
    )
    out: list[Candidate] = []
    source = f"{ws.label}:gpl{tag}"
    sign = None if sigma is None else np.sign(u)
    for fit in _front_fits(fits):
        shape = _gpl_shape(fit, cols, ws, problem, sign)
        if u_all is None:
            out += with_scale(_fix_abs(ws.prefactor * shape, problem), problem, source)
            continue
        h = evaluate(shape, problem.env, problem.y.size)
        denom = float(h @ h)
        if not np.all(np.isfinite(h)) or denom == 0.0:
            continue
        scale = float(h @ u_all) / denom
        for const in (_coef(scale), float_constant(scale, digits=15)):
            expr = _fix_abs(ws.prefactor * back(const * shape), problem)
            cand = score_candidate(expr, problem, source)
            if cand is not None:
                out.append(cand)
                if cand.exact:
                    break
    return out


def _log_weights(u: Array, sigma: Array) -> Array:
    """Row weights that make a least-squares fit of log|u| one of u itself: an error
    sigma in u is an error sigma/|u| in log|u|.

    A teacher's error is about the same size everywhere, so where |u| is small it is a large
    share of u: unweighted, the log fit spends its terms there, on the teacher's error
    (``w**0.55 * (exp(w/pi) - 1)**-0.46`` for ``1/(exp(w/(2*pi)) - 1)``, whose small values
    carry 40 % noise). Normalised to mean 1; a row with no finite error keeps weight 1.
    """
    with np.errstate(all="ignore"):
        rows = np.abs(u) / sigma
    rows = np.where(np.isfinite(rows) & (rows > 0), rows, np.nan)
    mean = float(np.nanmean(rows)) if np.any(np.isfinite(rows)) else 1.0
    out: Array = np.nan_to_num(rows / mean, nan=1.0)
    return out


def _front_fits(fits: list[SparseFit], near_count: int = 3) -> list[SparseFit]:
    """The fits worth rebuilding: the near ones (the best ``near_count``), else the best fit
    of each size up to :data:`SPARSE_TERMS` columns, and the best fit of all.

    On a noisy target (a network teacher) no fit is near, and the best one spends its terms
    on the noise; the sparse ones (``log|u| = a + 2*log(w)``) are the law's candidates.
    """
    near = [f for f in fits[:near_count] if f.rel_residual <= NEAR]
    if near or not fits:
        return near
    best: dict[int, SparseFit] = {}
    for fit in fits:
        size = len(fit.columns)
        if size <= SPARSE_TERMS and (
            size not in best or fit.rel_residual < best[size].rel_residual
        ):
            best[size] = fit
    overall = min(fits, key=lambda f: f.rel_residual)
    return [best[size] for size in sorted(best)] + ([] if overall in best.values() else [overall])


def _fix_abs(expr: sympy.Expr, problem: Problem) -> sympy.Expr:
    """Drop abs() around sub-expressions that are positive on all the data."""
    reps = {}
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Abs):
            inner = evaluate(node.args[0], problem.env, problem.y.shape[0])
            if np.all(inner > 0):
                reps[node] = node.args[0]
    return expr.xreplace(reps) if reps else expr


Transform = tuple[str, Callable[[Array], Array], Callable[[sympy.Expr], sympy.Expr]]


def _transforms(z: Array) -> list[Transform]:
    """Target transforms T valid on this z, with the inverse that rebuilds z from T(z)."""
    pos, neg = bool(np.all(z > 0)), bool(np.all(z < 0))
    sgn = -1 if neg else 1
    out: list[Transform] = [("id", lambda t: t, lambda s: s)]
    if pos or neg:
        out += [
            ("sq", lambda t: t**2, lambda s: sgn * sympy.sqrt(s)),
            ("inv", lambda t: 1 / t, lambda s: 1 / s),
            ("invsq", lambda t: 1 / t**2, lambda s: sgn / sympy.sqrt(s)),
            ("sqrt", lambda t: np.sqrt(np.abs(t)), lambda s: sgn * s**2),
            ("log", lambda t: np.log(np.abs(t)), lambda s: sgn * sympy.exp(s)),
        ]
    else:
        out.append(("inv", lambda t: 1 / t, lambda s: 1 / s))
    lo, hi = float(np.min(z)), float(np.max(z))
    if hi < 30:
        out.append(("exp", np.exp, sympy.log))
    if -np.pi / 2 <= lo and hi <= np.pi / 2:
        out += [("sin", np.sin, sympy.asin), ("tan", np.tan, sympy.atan)]
    if lo >= 0 and hi <= np.pi:
        out.append(("cos", np.cos, sympy.acos))
    if lo >= -1 and hi <= 1:
        out += [("asin", np.arcsin, sympy.sin), ("acos", np.arccos, sympy.cos)]
    out.append(("atan", np.arctan, sympy.tan))
    return out


def _linear_sum(fit: SparseFit, cols: Columns, ws: Workspace, snap: bool) -> sympy.Expr:
    terms = []
    for j, c in zip(fit.columns, fit.coefs, strict=True):
        const = _coef(c) if snap else float_constant(c, digits=15)
        terms.append(const * to_sympy(cols.recipes[j], ws.w_exprs))
    return sympy.Add(*terms)


def _rebuild(
    fits: list[SparseFit],
    build: Callable[[SparseFit, bool], sympy.Expr],
    problem: Problem,
    source: str,
) -> list[Candidate]:
    out: list[Candidate] = []
    for fit in _front_fits(fits, near_count=2):
        for snap in (True, False) if fit.rel_residual <= NEAR else (False,):
            cand = score_candidate(_fix_abs(build(fit, snap), problem), problem, source)
            if cand is not None:
                out.append(cand)
                if cand.exact:
                    break
    return out


def _ll_fits(
    a: Array, targets: list[tuple[str, Array]], tiers: list[int], level: int, work: int
) -> dict[str, list[SparseFit]]:
    """Sparse fits of every transformed target on growing library prefixes, tier-major.

    Every transform is tried on a small library before any gets a large one, and the work
    (library columns handed to the pursuit, ``work <= 0``: no limit) is counted, not timed,
    so the fits are the same on any machine. Stops at the first exact fit.

    A larger library's pursuit also follows the smaller one's best short fit: a law's
    simple terms (``x + 1/x``) are found in the small tier, but in the large one a greedy
    first pick can follow a complex column that correlates with their sum and never come
    back for the one trig term (``cos(2*beta)``) that completes them.
    """
    found: dict[str, list[SparseFit]] = {name: [] for name, _ in targets}
    seeds: dict[str, tuple[int, ...]] = {}
    spent = 0
    for size in sorted({*tiers, a.shape[1]})[: level + 1]:
        if size <= 1:
            continue
        for name, t in targets:
            if 0 < work < spent + size:
                return _best_first(found)
            spent += size
            line = seeds.get(name, ())
            fits = sparse_fit(a[:, :size], t, max_terms=10, beam=4, forced=(0,), line=line)
            if fits and fits[0].rel_residual < 1e-9:
                return {name: fits}
            found[name] = fits + found[name]
            short = [f for f in found[name] if len(f.columns) <= SEED_TERMS]
            if short:
                seeds[name] = min(short, key=lambda f: f.rel_residual).columns
    return _best_first(found)


def _best_first(found: dict[str, list[SparseFit]]) -> dict[str, list[SparseFit]]:
    return {n: sorted(fits, key=lambda f: f.rel_residual) for n, fits in found.items()}


def fit_ll(ws: Workspace, problem: Problem, level: int = 9, work: int = 0) -> list[Candidate]:
    """T(z) as a sparse sum of library terms, for every applicable transform T."""
    v, z = _sub(ws, problem)
    if not np.all(np.isfinite(z)):
        return []
    cols = ll_columns(v, trig=level > 1)
    a = cols.matrix()
    targets: list[tuple[str, Array]] = []
    inverses = {}
    for name, fwd, inv in _transforms(z):
        with np.errstate(all="ignore"):
            t = fwd(z)
        if np.all(np.isfinite(t)) and np.ptp(t) != 0:
            targets.append((name, t))
            inverses[name] = inv
    out: list[Candidate] = []
    for name, fits in _ll_fits(a, targets, cols.tiers, level, work).items():
        inv = inverses[name]

        def build(
            fit: SparseFit, snap: bool, inv: Callable[[sympy.Expr], sympy.Expr] = inv
        ) -> sympy.Expr:
            return ws.prefactor * inv(_linear_sum(fit, cols, ws, snap))

        out += _rebuild(fits, build, problem, f"{ws.label}:ll-{name}")
        if any(c.exact for c in out):
            break
    return out


ColumnSet = tuple[list[Recipe], Array]
# The column sets to fit T(z) with, given T(z) and the error each row of it carries (None
# for exact data).
Libraries = Callable[[Array, Array | None], Iterator[tuple[ColumnSet, ColumnSet, str]]]


def fit_rational(ws: Workspace, problem: Problem) -> list[Candidate]:
    """z = P/Q with P, Q sparse sums of powers, then also simple trig terms (Q's constant
    is 1).

    Libraries grow tier by tier: with trig terms first, the pursuit can find bloated exact
    identities (numerator and denominator sharing a factor) before the short quotient.
    """
    v = ws.w_values[problem.sub]
    if v.shape[1] == 0:
        return []
    lib = ll_columns(v, trig=True)
    a_all = lib.matrix()

    def tiers(_t: Array, _noise: Array | None) -> Iterator[tuple[ColumnSet, ColumnSet, str]]:
        for size in sorted({*lib.tiers[:3]}):
            recipes = lib.recipes[:size]
            den = [j for j, r in enumerate(recipes) if r[0] != "one"]
            yield (recipes, a_all[:, :size]), ([recipes[j] for j in den], a_all[:, den]), ""

    return _quotients(ws, problem, tiers, ("id",))


def fit_quotient(ws: Workspace, problem: Problem) -> list[Candidate]:
    """T(z) = g * P/Q with P, Q multilinear in a few atoms (:mod:`._quotient`), for T the
    identity and, when z is an angle, cos, sin and tan (so
    ``arccos((cos(t) - b)/(1 - b*cos(t)))`` is a quotient once its cosine is taken): an
    exhaustive screen over atom sets, for quotients whose columns no greedy pursuit would
    pick one by one."""
    v = ws.w_values[problem.sub]
    if v.shape[1] == 0:
        return []

    def screened(t: Array, noise: Array | None) -> Iterator[tuple[ColumnSet, ColumnSet, str]]:
        for num, den in screen_quotients(v, t, noise):
            yield (num, recipe_matrix(num, v)), (den, recipe_matrix(den, v)), "-quotient"

    return _quotients(ws, problem, screened, QUOTIENT_TRANSFORMS)


def _quotients(
    ws: Workspace, problem: Problem, libraries: Libraries, transforms: tuple[str, ...]
) -> list[Candidate]:
    """Rational pursuits of T(z) for each of ``transforms`` valid on z, over the numerator
    and denominator columns ``libraries(T(z))`` yields, until one is exact."""
    z = ws.z(problem)[problem.sub]
    sigma = _row_noise(ws, problem)
    out: list[Candidate] = []
    for name, fwd, inv in _transforms(z):
        if name not in transforms:
            continue
        with np.errstate(all="ignore"):
            t = fwd(z)
            noise = None if sigma is None else np.abs(fwd(z + sigma) - t)
        if not (np.all(np.isfinite(t)) and np.ptp(t) > 0):
            continue
        if noise is not None and not np.all(np.isfinite(noise)):
            noise = None
        tag = "" if name == "id" else f"-{name}"
        for num_cols, den_cols, kind in libraries(t, noise):
            out += _rational_on(ws, problem, num_cols, den_cols, t, inv, tag + kind)
            if any(c.exact for c in out):
                return out
    return out


def _rational_on(
    ws: Workspace,
    problem: Problem,
    num_cols: ColumnSet,
    den_cols: ColumnSet,
    z: Array,
    inv: Inverse,
    tag: str,
) -> list[Candidate]:
    """One pursuit of ``z * Q = P``, linear in the coefficients once Q's constant is fixed;
    the numerator's first column (a constant, or a factor) is in every fit.

    Q's columns enter centred, ``Q = 1 + sum b_k (q_k - mean q_k)``: uncentred, a sum of
    them that is constant (``cos(2u) - 2*cos(u)**2``), or nearly so, makes Q vanish and
    "fits" any target with P = 0. The law is rebuilt with Q's constant put back and both
    sums divided by it, so exact coefficients come out exact.
    """
    num_rec, num_val = num_cols
    den_rec, den_val = den_cols
    n_num = len(num_rec)
    means = den_val.mean(axis=0)
    a = np.concatenate([num_val, -z[:, None] * (den_val - means)], axis=1)
    fits = sparse_fit(a, z, max_terms=6, beam=4, forced=(0,))

    def build(fit: SparseFit, snap: bool) -> sympy.Expr:
        num = [(num_rec[j], c) for j, c in zip(fit.columns, fit.coefs, strict=True) if j < n_num]
        den = [
            (den_rec[j - n_num], c, float(means[j - n_num]))
            for j, c in zip(fit.columns, fit.coefs, strict=True)
            if j >= n_num
        ]
        const = 1.0 - sum(c * m for _, c, m in den)
        biggest = max([abs(c) for _, c, _ in den], default=0.0)
        unit = const if abs(const) > 1e-9 * max(1.0, biggest) else den[0][1]

        def term(c: float, r: Recipe | None) -> sympy.Expr:
            k = c / unit
            number = _coef(k) if snap else float_constant(k, digits=15)
            return number if r is None else number * to_sympy(r, ws.w_exprs)

        p = [term(c, r) for r, c in num]
        q = [term(const, None)] if unit == const else []
        q += [term(c, r) for r, c, _ in den]
        return ws.prefactor * inv(sympy.Add(*p) / sympy.Add(*q))

    return _rebuild(fits, build, problem, f"{ws.label}:rational{tag}")
