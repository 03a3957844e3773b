"""Structure from an oracle: symmetries that shrink the problem, as in AI Feynman.

With a callable teacher f (given, or a small torch MLP fitted to the data as a surrogate), test
whether f depends on two inputs only through x_i - x_j, x_i / x_j or x_i * x_j: moving both
along the symmetry must change f far less than moving one alone. Each symmetry found replaces
two variables by one, and since the reduced variable is computed from the same rows, the
reduced problem is fitted on the *real* data, so the surrogate's own error never enters the
equation (it only guides which sub-problem to try).

Additive and multiplicative separability are covered by the fitting families themselves
(sparse sums of terms; products of primitive factors and power-law peeling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Symmetry", "find_symmetries", "fit_surrogate", "reduce_columns"]

Array = NDArray[np.float64]
Oracle = Callable[[Array], Array]
KINDS = ("diff", "ratio", "prod")
SURROGATE_STEPS = 3000


@dataclass(frozen=True)
class Symmetry:
    """f depends on x_i and x_j only through x_i - x_j ('diff'), x_i / x_j or x_i * x_j."""

    kind: str
    i: int
    j: int
    strength: float  # symmetric change / single-variable change (smaller is stronger)


def fit_surrogate(x: Array, y: Array, seed: int, steps: int = SURROGATE_STEPS) -> Oracle:
    """A small MLP fitted to (x, y) in ``steps`` optimiser steps; deterministic for a seed.

    A fixed number of steps (not seconds) makes the surrogate, and so the symmetries it
    suggests, the same on a loaded machine as on an idle one.

    Inputs and output are standardised; tanh units keep the surrogate smooth, which matters
    more than raw accuracy for finite-difference symmetry tests.
    """
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    mx, sx = x.mean(axis=0), x.std(axis=0) + 1e-12
    my, sy = float(y.mean()), float(y.std()) + 1e-12
    xt = torch.tensor((x - mx) / sx, dtype=torch.float64)
    yt = torch.tensor((y - my) / sy, dtype=torch.float64)[:, None]
    width = 64
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, 1),
    ).double()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    done = 0
    while done < steps:
        order = torch.randperm(xt.shape[0], generator=gen)
        for start in range(0, xt.shape[0], 256):
            idx = order[start : start + 256]
            opt.zero_grad()
            loss = torch.mean((net(xt[idx]) - yt[idx]) ** 2)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            done += 1
            if done == steps // 3:
                for group in opt.param_groups:
                    group["lr"] = 1e-3
            if done >= steps:
                break

    def oracle(q: Array) -> Array:
        with torch.no_grad():
            out = net(torch.tensor((q - mx) / sx, dtype=torch.float64)).numpy()[:, 0]
        return np.asarray(out * sy + my, dtype=np.float64)

    return oracle


def _move(x: Array, kind: str, idx: tuple[int, ...], ref: int, step: float) -> Array:
    """Shift (diff) or scale (ratio, prod) the columns ``idx``; for prod the second divides."""
    out = x.copy()
    if kind == "diff":
        for i in idx:
            out[:, i] += step * np.std(x[:, ref])
        return out
    s = 1.0 + step
    for n, i in enumerate(idx):
        out[:, i] = out[:, i] / s if kind == "prod" and n == 1 else out[:, i] * s
    return out


def find_symmetries(
    x: Array, oracle: Oracle, seed: int, tol: float = 0.02, step: float = 0.05
) -> list[Symmetry]:
    """All pairwise symmetries of the oracle on points drawn from the data, strongest first."""
    rng = np.random.default_rng(seed)
    base = x[rng.choice(x.shape[0], size=min(300, x.shape[0]), replace=False)]
    f0 = oracle(base)
    found: list[Symmetry] = []
    n = x.shape[1]
    for i in range(n):
        for j in range(i + 1, n):
            for kind in KINDS:
                if kind != "diff" and (np.any(base[:, i] <= 0) or np.any(base[:, j] <= 0)):
                    continue
                single = min(
                    np.median(np.abs(oracle(_move(base, kind, (k,), i, step)) - f0)) for k in (i, j)
                )
                both = np.median(np.abs(oracle(_move(base, kind, (i, j), i, step)) - f0))
                if single > 0 and both / single < tol:
                    found.append(Symmetry(kind, i, j, float(both / single)))
    found.sort(key=lambda s: (s.strength, s.i, s.j, s.kind))
    return found


def reduce_columns(x: Array, syms: list[Symmetry]) -> tuple[list[tuple[str, int, int]], Array]:
    """Apply non-overlapping symmetries (strongest first): each pair becomes one column.

    Returns the recipe of every new column (("var", i, -1) keeps input i) and the values.
    """
    used: set[int] = set()
    chosen: list[Symmetry] = []
    for sym in syms:
        if sym.i not in used and sym.j not in used:
            chosen.append(sym)
            used |= {sym.i, sym.j}
    recipes = [("var", i, -1) for i in range(x.shape[1]) if i not in used]
    recipes += [(s.kind, s.i, s.j) for s in chosen]
    cols = []
    for kind, i, j in recipes:
        if kind == "var":
            cols.append(x[:, i])
        elif kind == "diff":
            cols.append(x[:, i] - x[:, j])
        elif kind == "ratio":
            cols.append(x[:, i] / x[:, j])
        else:
            cols.append(x[:, i] * x[:, j])
    return recipes, np.stack(cols, axis=1)
