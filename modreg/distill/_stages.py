"""The ordered table of search stages, and the one function a worker runs for a task.

A stage is one row of :data:`STAGES`: its fitting families, the workspaces it searches, the
order of its tasks, its work allowance and the context it needs. The engine runs the rows
top to bottom and stops at the first stage that yields an exact law; a new stage is one
more row. A task is one family on one workspace; everything it needs travels with it
(:class:`Task`), so workers share no module-level state and a task's result depends only on
its arguments.

Work, not time, bounds every task: the library families are finite by construction and the
tree search evaluates at most ``work`` trees (scaled by ``effort``). So the same data, seed
and options give the same candidates on any machine and under any load; wall-clock time is
only the outer cap that the pool enforces (:mod:`._pool`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from modreg.distill._fits import fit_constant, fit_gpl, fit_ll, fit_quotient, fit_rational
from modreg.distill._poly import fit_poly
from modreg.distill._problem import Candidate, Problem, Workspace
from modreg.distill._trees import fit_trees

__all__ = ["STAGES", "TREE_WORK", "Family", "Stage", "Task", "run_task"]

FitFn = Callable[[Workspace, Problem, int], list[Candidate]]
TREE_WORK = 600_000  # trees evaluated per tree task: about 10 s on one core for 4 variables
QUOTIENT_VARS = 4  # the atom-set screen of :mod:`._quotient` runs on workspaces this small
SMALL_VARS = 2  # tree enumeration is complete and takes a second or two for so few variables
LL_WORK = 40_000  # library columns handed to the sparse pursuit: about 4 s on one core


def _bounded(fit: Callable[..., list[Candidate]], **options: Any) -> FitFn:
    """A library family, finite by construction: it ignores the work allowance."""
    return functools.partial(_call_bounded, fit, options)


def _call_bounded(
    fit: Callable[..., list[Candidate]], options: dict[str, Any], ws: Workspace, p: Problem, _w: int
) -> list[Candidate]:
    return fit(ws, p, **options)


def _ll(level: int) -> FitFn:
    return functools.partial(_call_ll, level)


def _call_ll(level: int, ws: Workspace, problem: Problem, work: int) -> list[Candidate]:
    return fit_ll(ws, problem, level=level, work=work)


def _trees(part: int) -> FitFn:
    return functools.partial(_call_trees, part)


def _call_trees(part: int, ws: Workspace, problem: Problem, work: int) -> list[Candidate]:
    return fit_trees(ws, problem, part, work)


@dataclass(frozen=True)
class Family:
    """A named fitting family: ``fit(workspace, problem, work) -> candidates``.

    ``work`` is its allowance per task (trees evaluated, library columns fitted), scaled by
    the search's ``effort``; 0 for families that are small and finite by construction.
    """

    name: str
    fit: FitFn
    work: int = 0


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("const", _bounded(fit_constant)),
        Family("gpl0", _bounded(fit_gpl, level=0)),
        Family("gpl", _bounded(fit_gpl)),
        Family("gpls", _bounded(fit_gpl, shifts=True)),
        Family("ll0", _bounded(fit_ll, level=1)),
        Family("ll", _ll(9), LL_WORK),
        Family("rational", _bounded(fit_rational)),
        Family("quotient", _bounded(fit_quotient)),
        Family("poly", _bounded(fit_poly)),
        Family("trees0", _trees(0), TREE_WORK),
        Family("trees1", _trees(1), TREE_WORK),
    )
}

WorkspaceSet = Literal["base", "structure", "all"]


@dataclass(frozen=True)
class Stage:
    """One row of the search table.

    Attributes:
        label: shown in progress and recorded with each candidate's source.
        families: fitted on every workspace of the stage.
        workspaces: ``base`` (dimensional variants, raw variables and their peeled forms),
            ``structure`` (the reduced problems the oracle's symmetries suggest) or ``all``.
        order: ``family`` runs each family over every workspace before the next family
            (cheap families everywhere first); ``workspace`` runs every family on a workspace
            before the next.
        max_vars: run only when some workspace has at most this many working variables
            (then only on those workspaces): exhaustive searches that are cheap and
            complete for small problems go early for them.
        budget: the stage's share of the search's work: at most this much in all, split
            evenly over its tasks (None: each family's own allowance per task).
        needs: context the stage needs before it can run (``symmetries``: query the oracle
            for symmetric pairs; ``separation``: a stage of no families that splits an
            oracle's inputs into separable halves and distils each, :mod:`._separable`).
        complete: the stage searches a problem of at most ``max_vars`` inputs exhaustively
            (and cheaply), so a law found earlier only at the noise level does not end the
            search before it ran: on a noisy target, a short curve of cheap constants
            (``2*pi*alpha**2*exp(theta**2/5)/theta**4`` for ``alpha**2/sin(theta/2)**4``)
            meets the noise too, and the complete search is what finds the law beside it.
    """

    label: str
    families: tuple[Family, ...]
    workspaces: WorkspaceSet = "base"
    order: Literal["family", "workspace"] = "family"
    max_vars: int | None = None
    budget: int | None = None
    needs: Literal["", "symmetries", "separation"] = ""
    complete: bool = False

    def tasks(self, workspaces: Sequence[int], effort: float) -> list[Task]:
        """This stage's tasks in their fixed order."""
        if self.order == "family":
            pairs = [(f, i) for f in self.families for i in workspaces]
        else:
            pairs = [(f, i) for i in workspaces for f in self.families]
        heavy = sum(1 for f, _ in pairs if f.work)
        share = self.budget // heavy if self.budget is not None and heavy else None
        return [
            Task(i, f, int((f.work if share is None else min(f.work, share)) * effort))
            for f, i in pairs
        ]


def _families(*names: str) -> tuple[Family, ...]:
    return tuple(FAMILIES[n] for n in names)


STAGES: tuple[Stage, ...] = (
    Stage("power laws", _families("const", "gpl0")),
    Stage("separability: halves of the oracle", (), needs="separation"),
    Stage("polynomial libraries", _families("poly", "ll0", "rational")),
    Stage("multilinear quotients", _families("quotient"), max_vars=QUOTIENT_VARS),
    Stage(
        "expression trees, few variables",
        _families("trees0", "trees1"),
        order="workspace",
        max_vars=SMALL_VARS,
        complete=True,
    ),
    Stage("function libraries", _families("gpl", "ll"), order="workspace", budget=4 * LL_WORK),
    Stage("shifted power laws", _families("gpls")),
    Stage(
        "structure: symmetries of the oracle",
        _families("gpl", "poly", "ll", "rational"),
        workspaces="structure",
        order="workspace",
        needs="symmetries",
    ),
    Stage(
        "expression trees",
        _families("trees0", "trees1"),
        workspaces="all",
        order="workspace",
        budget=2 * TREE_WORK,
    ),
)


@dataclass(frozen=True)
class Task:
    """One family on one workspace (by index), with its work allowance."""

    workspace: int
    family: Family
    work: int


def run_task(problem: Problem, workspaces: Sequence[Workspace], task: Task) -> list[Candidate]:
    """The candidates of one task; numeric failures of a trial fit mean "nothing here"."""
    ws = workspaces[task.workspace]
    has_vars = ws.w_values.shape[1] > 0
    if (task.family.name == "const") == has_vars:
        return []
    try:
        return task.family.fit(ws, problem, task.work)
    except (ValueError, np.linalg.LinAlgError, ZeroDivisionError, OverflowError):
        return []
