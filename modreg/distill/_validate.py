"""Input checks for distillation: one-line DistillError messages naming the value and the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from modreg.errors import DistillError
from modreg.spec.grammar import RESERVED_NAMES

__all__ = ["MIN_SAMPLES", "validate"]

MIN_SAMPLES = 20
# Names the expression grammar already uses (its functions and pi): a variable called "exp"
# would be unreadable. Every other name (E, I, ...) is the user's.
RESERVED = RESERVED_NAMES
Array = NDArray[np.float64]


def _matrix(X: Any, y: Any) -> tuple[Array, Array]:
    try:
        x = np.asarray(X, dtype=np.float64)
        yv = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DistillError(f"X and y must be numeric arrays: {exc}") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DistillError(f"X has shape {x.shape}: pass a 2-D array (n_samples, n_vars)")
    if yv.ndim != 1:
        yv = yv.reshape(-1) if yv.ndim == 2 and 1 in yv.shape else yv
    if yv.ndim != 1 or yv.shape[0] != x.shape[0]:
        raise DistillError(
            f"y has shape {yv.shape} but X has {x.shape[0]} rows: pass one target value per row"
        )
    return x, yv


def _check_values(x: Array, yv: Array, names: Sequence[str]) -> None:
    if not np.all(np.isfinite(yv)):
        bad = int(np.flatnonzero(~np.isfinite(yv))[0])
        raise DistillError(f"y[{bad}] = {yv[bad]} is not finite: drop or fix non-finite rows")
    for j, name in enumerate(names):
        col = x[:, j]
        if not np.all(np.isfinite(col)):
            bad = int(np.flatnonzero(~np.isfinite(col))[0])
            raise DistillError(
                f"input {name!r} row {bad} = {col[bad]} is not finite: drop or fix non-finite rows"
            )
    need = max(MIN_SAMPLES, 5 * (x.shape[1] + 1))
    if x.shape[0] < need:
        raise DistillError(
            f"only {x.shape[0]} samples for {x.shape[1]} variables: give at least {need} rows"
        )
    if np.ptp(yv) == 0:
        raise DistillError(
            f"the target is constant ({yv[0]!r}) on all rows: nothing to distill, vary the inputs"
        )


def _check_units(
    units: Sequence[Mapping[str, float]] | None,
    target_unit: Mapping[str, float] | None,
    n_vars: int,
) -> None:
    if units is None:
        if target_unit is not None:
            raise DistillError("target_unit given without units: give units for every input too")
        return
    if len(units) != n_vars:
        raise DistillError(f"{len(units)} unit entries for {n_vars} variables: give one per input")
    if target_unit is None:
        raise DistillError("units given without target_unit: give the output's unit too")
    for entry in [*units, target_unit]:
        for dim, power in entry.items():
            if not isinstance(dim, str) or not np.isfinite(float(power)):
                raise DistillError(f"unit exponent {dim!r}: {power!r} is not a finite number")


def validate(
    X: Any,
    y: Any,
    names: Sequence[str],
    units: Sequence[Mapping[str, float]] | None,
    target_unit: Mapping[str, float] | None,
) -> tuple[Array, Array]:
    """Checked float64 copies of X (2-D) and y (1-D); raises DistillError on bad input."""
    x, yv = _matrix(X, y)
    names = list(names)
    if len(names) != x.shape[1]:
        raise DistillError(
            f"{len(names)} names for {x.shape[1]} columns of X: give one name per column"
        )
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise DistillError(f"variable name {name!r} is not a valid identifier: rename it")
        if name in RESERVED:
            raise DistillError(f"variable name {name!r} is a function or constant name: rename it")
    if len(set(names)) != len(names):
        raise DistillError(f"duplicate variable names in {names}: make each name unique")
    _check_values(x, yv, names)
    _check_units(units, target_unit, x.shape[1])
    return x.copy(), yv.copy()
