"""Orchestration: validation, changes of variables, the stage table, the cap, the front.

The stages of :data:`._stages.STAGES` run in order and stop at the first stage that yields an
exact equation. Within a stage, tasks (one fitting family on one workspace) are spread over
worker processes and their results collected in task order, so the answer does not depend on
which worker finished first, and every task is bounded by work, not time: the same seed
gives the same expression on any machine. The wall-clock budget is an outer cap only.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from numpy.typing import NDArray

from modreg.distill._dimensional import DAVariant, dimensional_variants
from modreg.distill._expr import evaluate, to_text
from modreg.distill._noise import merge_numbers, settle
from modreg.distill._pool import Runner
from modreg.distill._problem import Candidate, Problem, Workspace, score_candidate
from modreg.distill._select import CHEAP_COST, MEETS, meets, select, trimmed_rms
from modreg.distill._separable import find_split, half_problem
from modreg.distill._stages import STAGES, Stage, Task, run_task
from modreg.distill._structure import (
    SURROGATE_STEPS,
    Symmetry,
    find_symmetries,
    fit_surrogate,
    reduce_columns,
)
from modreg.distill._tidy import tidy
from modreg.distill._validate import validate
from modreg.errors import DistillError

__all__ = ["DistillResult", "ParetoPoint", "distill_arrays"]

Array = NDArray[np.float64]
Oracle = Callable[[Array], Array]
Progress = Callable[[str, float], None]
SUBSAMPLE = 400
NOISE_STOP_NODES = 20
NOISE_STOP_PER_INPUT = 4  # ... or 4 per input: a law of 9 inputs needs about 28 nodes to use them
NOISE_STOP_SHORT = 7

POOL_NOISE, POOL_SIZE, POOL_NODES = 3 * MEETS, 40, 40
SEPARATE_VARS = 3  # two-variable problems are searched whole (complete tree enumeration)


@dataclass(frozen=True)
class ParetoPoint:
    """One equation on the accuracy/complexity front."""

    expression: str
    complexity: int
    rmse: float
    sympy_expr: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class DistillResult:
    """The chosen equation, its scores on the given data, and the whole Pareto front."""

    expression: str
    sympy_expr: Any
    complexity: int
    rmse: float
    r2: float
    max_rel_error: float
    exact: bool
    pareto: list[ParetoPoint]
    seconds: float
    source: str = ""
    timed_out: bool = False  # the wall-clock cap cut the search before its work was done
    within_noise: bool = False  # inexact, but within the teacher's own error level
    # Near-noise candidates beyond the front, for settling (a target with noise only): a
    # law with fitted floats is often dominated until settling makes it exact.
    pool: list[Any] = field(default_factory=list, repr=False, compare=False)


def _power_expr(symbols: Sequence[sympy.Symbol], exps: Sequence[Any]) -> sympy.Expr:
    pairs = zip(symbols, exps, strict=True)
    return sympy.Mul(*[s ** sympy.Rational(e.numerator, e.denominator) for s, e in pairs if e])


def _workspaces(problem: Problem, variants: Sequence[DAVariant]) -> list[Workspace]:
    """One workspace per Buckingham variant: y = prefactor * z(pi groups)."""
    out = []
    n = problem.x.shape[0]
    for i, var in enumerate(variants):
        pref = _power_expr(problem.symbols, var.prefactor)
        groups = [_power_expr(problem.symbols, g) for g in var.groups]
        with np.errstate(all="ignore"):
            pv = _power_values(problem.x, var.prefactor)
            cols = [_power_values(problem.x, g) for g in var.groups]
        gv = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
        if np.all(np.isfinite(pv)) and np.all(pv != 0) and np.all(np.isfinite(gv)):
            out.append(Workspace(f"da{i}", pref, pv, groups, gv))
    return out


def _peeled(ws: Workspace, problem: Problem) -> Workspace | None:
    """The workspace with clean power factors moved into the prefactor.

    A log-linear fit of log|z| on log|w_i| estimates how z scales with each variable; a
    coefficient within 0.01 of a non-zero integer suggests z = w_i**c * rest (multiplicative
    separability), so the rest is searched alone: G*m1*m2/r**2-like laws whose 'rest' is a
    sum of squares become a plain polynomial after inversion. Each w_i's coefficient is
    estimated with smooth functions of the *other* variables beside it (:func:`_exponents`),
    so a rest that varies with them does not bias it.
    """
    k = ws.w_values.shape[1]
    z = ws.z(problem)
    if k < 2 or not np.all(np.isfinite(z)) or np.any(z == 0) or np.any(ws.w_values == 0):
        return None
    coef = _exponents(ws.w_values, z)
    halves = np.round(coef)
    peel = (np.abs(coef - halves) < 0.01) & (halves != 0)
    if not peel.any() or peel.all():
        return None
    pref, values = ws.prefactor, ws.pref_values.copy()
    for i in np.flatnonzero(peel):
        e = sympy.Integer(round(halves[i]))
        pref = pref * ws.w_exprs[i] ** e
        with np.errstate(all="ignore"):
            values = (
                values
                * np.abs(ws.w_values[:, i]) ** float(e)
                * (np.sign(ws.w_values[:, i]) ** int(e) if e.q == 1 else 1.0)
            )
    return Workspace(f"{ws.label}p", pref, values, ws.w_exprs, ws.w_values)


def _exponents(w: Array, z: Array) -> Array:
    """For each w_i, the coefficient of log|w_i| in a fit of log|z| that also has smooth
    terms in the other variables (log|w_j|**2, log|w_j|**3, w_j, w_j**2 and products of their
    logs): the exponent of w_i if z = w_i**c * rest(others), even where the sample
    correlates w_i with the others (pi groups that share a variable)."""
    k = w.shape[1]
    with np.errstate(all="ignore"):
        logs = np.log(np.abs(w))
        lz = np.log(np.abs(z))
        scaled = w / np.where(np.std(w, axis=0) > 0, np.std(w, axis=0), 1.0)
        smooth = [
            np.stack([logs[:, j] ** 2, logs[:, j] ** 3, scaled[:, j], scaled[:, j] ** 2], axis=1)
            for j in range(k)
        ]
    out = np.zeros(k)
    for i in range(k):
        others = [j for j in range(k) if j != i]
        cross = [logs[:, a] * logs[:, b] for a, b in itertools.combinations(others, 2)]
        blocks = [np.ones((z.size, 1)), logs, *(smooth[j] for j in others)]
        if cross:
            blocks.append(np.stack(cross, axis=1))
        design = np.concatenate(blocks, axis=1)
        if not np.all(np.isfinite(design)):
            design = np.concatenate([np.ones((z.size, 1)), logs], axis=1)
        out[i] = np.linalg.lstsq(design, lz, rcond=None)[0][1 + i]
    return out


def _unique(workspaces: list[Workspace]) -> list[Workspace]:
    """Drop workspaces identical to an earlier one (all-dimensionless inputs: DA == raw)."""
    out: list[Workspace] = []
    for ws in workspaces:
        if not any(
            o.w_values.shape == ws.w_values.shape
            and np.array_equal(o.w_values, ws.w_values)
            and np.array_equal(o.pref_values, ws.pref_values)
            for o in out
        ):
            out.append(ws)
    return out


def _power_values(x: Array, exps: Sequence[Any]) -> Array:
    out = np.ones(x.shape[0])
    for i, e in enumerate(exps):
        if e == 0:
            continue
        out = out * (x[:, i] ** int(e) if e.denominator == 1 else np.abs(x[:, i]) ** float(e))
    return out


def _raw_workspace(problem: Problem) -> Workspace:
    n = problem.x.shape[0]
    return Workspace("raw", sympy.Integer(1), np.ones(n), list(problem.symbols), problem.x.copy())


def pareto_front(cands: Sequence[Candidate]) -> list[Candidate]:
    """Lowest-error candidate at each complexity, keeping only strict improvements."""
    best: dict[int, Candidate] = {}
    for c in cands:
        cur = best.get(c.complexity)
        if cur is None or (c.rmse, str(c.expr)) < (cur.rmse, str(cur.expr)):
            best[c.complexity] = c
    front: list[Candidate] = []
    for comp in sorted(best):
        c = best[comp]
        if not front or c.rmse < front[-1].rmse * (1 - 1e-9):
            front.append(c)
    return front


def choose(front: Sequence[Candidate], noise: float = 0.0) -> Candidate:
    """The simplest exact point if there is one, else the one rule of :mod:`._select`."""
    for c in front:
        if c.exact:
            return c
    return front[select(front, noise)]


def distill_arrays(
    X: Array,
    y: Array,
    names: list[str],
    units: list[dict[str, float]] | None = None,
    target_unit: dict[str, float] | None = None,
    time_budget: float = 60.0,
    seed: int = 0,
    workers: int = 2,
    oracle: Oracle | None = None,
    progress: Progress | None = None,
    effort: float = 1.0,
    stages: Sequence[Stage] = STAGES,
    noise: float = 0.0,
) -> DistillResult:
    """Find a concise equation y = f(X) (see the package docstring for the method).

    The search is bounded by work (``effort`` scales the tree search's allowance), so a seed
    gives the same equation on any machine; ``time_budget`` is only the outer cap, enforced
    by killing workers that do not answer in time (then ``timed_out`` is set and the best
    point found so far is returned). ``workers=0`` searches in this process. ``stages`` is
    the table of :mod:`._stages` (a different one only for experiments and tests).
    ``noise`` is the RMSE the target itself carries (a network teacher's error, in y's
    units; 0 for exact data): a candidate within it ends the search like an exact one.
    """
    start = time.monotonic()
    if not (effort > 0 and math.isfinite(effort)):
        raise DistillError(f"effort {effort} must be a positive number (1 is the default)")
    x, yv = validate(X, y, names, units, target_unit)
    rng = np.random.default_rng(seed)
    sub = np.sort(rng.choice(x.shape[0], size=min(SUBSAMPLE, x.shape[0]), replace=False))
    problem = Problem(x, yv, list(names), sub.astype(np.int64), noise)
    variants = dimensional_variants(units, target_unit or {}) if units is not None else []
    base = [*_workspaces(problem, variants), _raw_workspace(problem)]
    base = _unique(base + [p for w in base if (p := _peeled(w, problem)) is not None])
    report = progress or (lambda _s, _f: None)
    cands: list[Candidate] = []
    done: set[Task] = set()
    hold = _held_until(stages, problem)
    with Runner(workers, start + time_budget) as runner:
        structure: list[Workspace] | None = None
        for i, stage in enumerate(stages):
            if stage.needs == "separation":
                if oracle is not None and problem.x.shape[1] >= SEPARATE_VARS:
                    report(stage.label, i / len(stages))
                    cands += _separated(problem, oracle, seed, effort, noise, workers, runner)
                    if any(_good(c, noise, problem, i < hold) for c in cands):
                        break
                continue
            if stage.needs == "symmetries" and structure is None:
                report(stage.label, i / len(stages))
                structure = _symmetry_workspaces(problem, oracle, seed, effort, runner)
            every = base + (structure or [])
            tasks = [t for t in stage.tasks(_indices(stage, base, every), effort) if t not in done]
            if not tasks:
                continue
            report(stage.label, i / len(stages))
            done.update(tasks)
            jobs = [(problem, every, task) for task in tasks]

            def good(found: list[Candidate], held: bool = i < hold) -> bool:
                return any(_good(c, noise, problem, held) for c in found)

            for found in runner.map(run_task, jobs, stop=good):
                cands += found
            if runner.timed_out or good(cands):
                break
    report("done", 1.0)
    return _result(cands, problem, time.monotonic() - start, runner.timed_out, noise)


def _indices(stage: Stage, base: list[Workspace], every: list[Workspace]) -> list[int]:
    """The workspaces a stage searches, by index into ``every`` (base first)."""
    chosen = {
        "base": range(len(base)),
        "structure": range(len(base), len(every)),
        "all": range(len(every)),
    }[stage.workspaces]
    if stage.max_vars is None:
        return list(chosen)
    return [i for i in chosen if 0 < every[i].w_values.shape[1] <= stage.max_vars]


def _held_until(stages: Sequence[Stage], problem: Problem) -> int:
    """Index of the last complete stage (:attr:`._stages.Stage.complete`) that takes the
    whole problem: before it, only exact or very short laws end the search."""
    n = problem.x.shape[1]
    takes = [i for i, s in enumerate(stages) if s.complete and n <= (s.max_vars or n)]
    return max(takes, default=-1)


def _good(c: Candidate, noise: float, problem: Problem, held: bool = False) -> bool:
    """Exact, or a law that is, at the noise level, what a law looks like.

    A candidate within the target's own error ends the search when it is very short
    (at most :data:`NOISE_STOP_SHORT` nodes, ``9.81*t``), or short (at most
    :data:`NOISE_STOP_NODES` nodes, or :data:`NOISE_STOP_PER_INPUT` per input) and *clean*:
    once settled to the noise (:func:`._noise.settle`) no fitted number is left, every
    constant having become a cheap exact one (prior cost at most :data:`._select.CHEAP_COST`:
    3/2, 1/(4*pi), not 21/(5*pi), which a loose tolerance admits by chance). Curves of
    fitted numbers also meet a network's error (``m_0*(1.31 - 0.57*cos(cos(v/c)**(-2)))``
    for ``m_0/sqrt(1 - v**2/c**2)``), and stopping at one would hide the law. ``held``: a
    complete search is still to come (:func:`_held_until`), so only very short laws count.
    """
    if c.exact:
        return True
    short = (
        NOISE_STOP_SHORT
        if held
        else max(NOISE_STOP_NODES, NOISE_STOP_PER_INPUT * len(problem.names))
    )
    if noise <= 0 or c.complexity > short:
        return False
    score = _rows_score(problem)
    if not meets(score(c.expr), noise):
        return False
    if c.complexity <= NOISE_STOP_SHORT:
        return True
    settled = settle(c.expr, score, MEETS * noise, _rms(problem.y), max_cost=CHEAP_COST)
    return not settled.atoms(sympy.Float) and meets(score(settled), noise)


def _rms(values: Array) -> float:
    return float(np.sqrt(np.mean(values**2)))


def _rows_score(problem: Problem) -> Callable[[sympy.Expr], float]:
    """Trimmed RMSE (:func:`._select.trimmed_rms`) on the problem's subsample: a quick
    verdict at the noise level, for the stopping test and the pool."""
    rows = problem.sub
    env = {n: v[rows] for n, v in problem.env.items()}
    y = problem.y[rows]

    def score(expr: sympy.Expr) -> float:
        with np.errstate(all="ignore"):
            try:
                return trimmed_rms(evaluate(expr, env, y.size) - y)
            except ValueError:  # a node the evaluator does not know: no law of ours
                return math.inf

    return score


def _separated(
    problem: Problem,
    oracle: Oracle,
    seed: int,
    effort: float,
    noise: float,
    workers: int,
    runner: Runner,
) -> list[Candidate]:
    """The law rebuilt from the halves of a separable oracle (:mod:`._separable`), each
    distilled on its own (recursively, with half the effort and the time left) and settled
    to the noise like a whole answer (:func:`._parsimony.parsimonious`), but scored up to
    the one number :func:`_joined` refits: a half's own scale (``mul``) or offset (``add``)
    includes the other half's value at the reference point, so it is no law's constant
    and snapping it (1.6206 to pi/2) would only cost the rebuilt law its accuracy."""
    from modreg.distill._parsimony import parsimonious, search_budget  # builds on this module

    split = find_split(problem.x, oracle, seed)
    if split is None:
        return []
    reference = np.median(problem.x, axis=0)
    f0 = float(oracle(reference[None, :])[0])
    if not math.isfinite(f0) or f0 == 0:
        return []
    laws = []
    for n, keep in enumerate((split.group, split.rest)):
        xs, ys, half = half_problem(problem.x, oracle, keep, reference)
        left = runner.deadline - time.monotonic()
        if left <= 1:
            return []
        scale = _rms(ys) / max(_rms(problem.y), 1e-300) if split.kind == "mul" else 1.0
        result_names = [problem.names[i] for i in keep]
        try:
            result = distill_arrays(
                xs,
                ys,
                result_names,
                time_budget=search_budget(left / (2 - n), noise > 0),
                seed=seed,
                workers=workers,
                oracle=half,
                effort=effort / 2,
                noise=noise * scale,
            )
            result = parsimonious(
                result,
                xs,
                ys,
                result_names,
                score=_free_score(split.kind, xs, ys, result_names),
                sigma=noise * scale,
                deadline=runner.deadline,
            )
        except DistillError:
            return []
        laws.append(result.sympy_expr)
    cand = score_candidate(_joined(laws, split.kind, problem), problem, f"separable-{split.kind}")
    return [] if cand is None else [cand]


def _free_score(kind: str, x: Array, y: Array, names: list[str]) -> Callable[[sympy.Expr], float]:
    """RMSE of a half's law after the best scale (``mul``) or offset (``add``) of its own."""
    env = {name: x[:, j] for j, name in enumerate(names)}

    def score(expr: sympy.Expr) -> float:
        with np.errstate(all="ignore"):
            try:
                values = evaluate(expr, env, y.size)
            except ValueError:  # a node the evaluator does not know: no law of ours
                return math.inf
            if not np.all(np.isfinite(values)):
                return math.inf
            if kind == "add":
                return float(np.std(y - values))
            power = float(np.dot(values, values))
            k = float(np.dot(y, values)) / power if power > 0 else 0.0
            return _rms(y - k * values)

    return score


def _joined(halves: list[sympy.Expr], kind: str, problem: Problem) -> sympy.Expr:
    """g + h + a or a * g * h, with the one number ``a`` fitted to the samples (least
    squares), so the halves' own constants and f(a0, b0) need not cancel exactly."""
    joined = halves[0] + halves[1] if kind == "add" else halves[0] * halves[1]
    with np.errstate(all="ignore"):
        try:
            part = evaluate(joined, problem.env, problem.y.size)
        except ValueError:  # a node the evaluator does not know: no law of ours
            return joined
    if kind == "add":
        number = float(np.mean(problem.y - part))
        return merge_numbers(joined + sympy.Float(number, 15))
    number = float(np.sum(problem.y * part) / np.sum(part * part))
    return merge_numbers(sympy.Float(number, 15) * joined) if math.isfinite(number) else joined


def _surrogate_symmetries(x: Array, y: Array, seed: int, steps: int) -> list[Symmetry]:
    """Symmetries of a small MLP fitted to the data (run in a worker: torch stays there)."""
    return find_symmetries(x, fit_surrogate(x, y, seed, steps), seed, tol=0.03)


def _symmetry_workspaces(
    problem: Problem, oracle: Oracle | None, seed: int, effort: float, runner: Runner
) -> list[Workspace]:
    """Workspaces with symmetric pairs of inputs merged (and their peeled versions)."""
    try:
        if oracle is not None:  # a teacher lives in this process: query it here
            syms = find_symmetries(problem.x, oracle, seed, tol=0.02)
        else:
            steps = max(100, int(SURROGATE_STEPS * effort))
            syms = runner.call(_surrogate_symmetries, problem.x, problem.y, seed, steps) or []
    except (ValueError, RuntimeError, FloatingPointError):
        return []
    if not syms:
        return []
    recipes, values = reduce_columns(problem.x, syms)
    sym = problem.symbols
    ops = {"var": lambda i, j: sym[i], "diff": lambda i, j: sym[i] - sym[j]}
    ops.update(ratio=lambda i, j: sym[i] / sym[j], prod=lambda i, j: sym[i] * sym[j])
    exprs = [ops[k](i, j) for k, i, j in recipes]
    ws = Workspace("sym", sympy.Integer(1), np.ones(problem.y.size), exprs, values)
    peeled = _peeled(ws, problem)
    return [ws] if peeled is None else [ws, peeled]


def _result(
    cands: list[Candidate], problem: Problem, seconds: float, timed_out: bool, noise: float
) -> DistillResult:
    if not cands:
        mean = score_candidate(sympy.Float(float(np.mean(problem.y)), 15), problem, "mean")
        assert mean is not None
        cands = [mean]
    front = pareto_front(cands)
    best = choose(front, noise)
    # Only exact equations are tidied: rewriting float-laden approximations is slow and moot.
    tidied = score_candidate(tidy(best.expr, problem), problem, best.source) if best.exact else None
    if tidied is not None and tidied.complexity < best.complexity and tidied.exact:
        front = pareto_front([*cands, tidied])
        best = tidied
    points = [ParetoPoint(to_text(c.expr), c.complexity, c.rmse, c.expr) for c in front]
    return DistillResult(
        expression=to_text(best.expr),
        sympy_expr=best.expr,
        complexity=best.complexity,
        rmse=best.rmse,
        r2=best.r2,
        max_rel_error=best.max_rel,
        exact=best.exact,
        pareto=points,
        seconds=seconds,
        source=best.source,
        timed_out=timed_out and not _good(best, noise, problem),
        within_noise=not best.exact and meets(best.rmse, noise),
        pool=[] if best.exact else _near_noise(cands, front, noise, problem),
    )


def _near_noise(
    cands: list[Candidate], front: list[Candidate], noise: float, problem: Problem
) -> list[Any]:
    """The shortest candidates that fit the target to within a few times its noise."""
    if noise <= 0:
        return []
    score = _rows_score(problem)
    seen = {str(c.expr) for c in front}
    near: list[Any] = []
    for c in sorted(cands, key=lambda c: (c.complexity, c.rmse, str(c.expr))):
        text = str(c.expr)
        if len(near) == POOL_SIZE or c.complexity > POOL_NODES:
            break
        if text not in seen:
            seen.add(text)
            if score(c.expr) <= POOL_NOISE * noise:
                near.append(c.expr)
    return near
