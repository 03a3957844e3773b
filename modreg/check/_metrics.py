"""Accuracy metrics over one output port, and what "degraded beyond tolerance" means for each.

All metrics take every component of every sample together (a ``[3]`` force is 3 numbers per
row). ``degradation`` is how much worse the replacement is than the original, in the
metric's own unit; a relative tolerance multiplies :func:`scale`: the RMS of the reference
values for RMSE and MAE (so ``2%`` is 2 % of the output's typical size), 1 for the already
relative max relative error and R².

Example:
    >>> import numpy as np
    >>> ref = np.array([1.0, -2.0, 3.0])
    >>> round(score("rmse", ref * 1.01, ref), 4), round(score("max_rel", ref * 1.01, ref), 4)
    (0.0216, 0.01)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["METRICS", "Metric", "degradation", "perfect", "scale", "score"]

Metric = Literal["rmse", "mae", "max_rel", "r2"]
METRICS: tuple[Metric, ...] = ("rmse", "mae", "max_rel", "r2")
Array = np.ndarray[Any, Any]
# Max relative error divides by |y| + FLOOR * rms(y): outputs crossing zero (drag at v = 0)
# would otherwise turn a harmless absolute error into an unbounded relative one.
FLOOR = 1e-3


def _rms(values: Array) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def score(metric: Metric, predicted: Array, reference: Array) -> float:
    """``metric`` of ``predicted`` against ``reference`` (same shape)."""
    error = np.asarray(predicted, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    if metric == "rmse":
        return _rms(error)
    if metric == "mae":
        return float(np.mean(np.abs(error)))
    if metric == "max_rel":
        floor = FLOOR * _rms(reference) or np.finfo(np.float64).tiny
        return float(np.max(np.abs(error) / (np.abs(reference) + floor)))
    total = float(np.sum(np.square(reference - np.mean(reference))))
    residual = float(np.sum(np.square(error)))
    if total == 0.0:
        return 1.0 if residual == 0.0 else -np.inf
    return 1.0 - residual / total


def perfect(metric: Metric) -> float:
    """The score of an exact prediction."""
    return 1.0 if metric == "r2" else 0.0


def degradation(metric: Metric, original: float, replaced: float) -> float:
    """How much worse ``replaced`` scores than ``original`` (negative when better)."""
    return original - replaced if metric == "r2" else replaced - original


def scale(metric: Metric, reference: Array) -> float:
    """What a relative tolerance is a fraction of."""
    return _rms(reference) if metric in ("rmse", "mae") else 1.0
