"""Accuracy tolerances: relative (``2%``) or absolute (``0.01``), parsed once.

A relative tolerance is a fraction of a scale the check supplies (for RMSE and MAE, the
root-mean-square of the reference output; for max relative error and R², 1), so ``2%``
means "degrade by at most 2 % of the output's typical size". An absolute tolerance is in
the metric's own unit (the port's unit for RMSE and MAE).

Example:
    >>> parse_tolerance("2%").limit(scale=50.0)
    1.0
    >>> parse_tolerance("0.01").limit(scale=50.0)
    0.01
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["Tolerance", "parse_tolerance"]

_TOLERANCE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+)\s*(%?)\s*")


@dataclass(frozen=True)
class Tolerance:
    """How much a metric may degrade: ``value`` absolute, or ``value`` × scale when relative."""

    value: float
    relative: bool

    def limit(self, *, scale: float) -> float:
        """The allowed degradation for a metric whose natural size is ``scale``."""
        return self.value * scale if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


def parse_tolerance(text: str | float) -> Tolerance:
    """Parse ``2%`` / ``0.5 %`` (relative) or ``0.01`` (absolute, in the metric's unit).

    Raises:
        ValueError: not a non-negative finite number with an optional ``%``.
    """
    if isinstance(text, bool):
        raise ValueError(f"tolerance {text!r} is not a number: write e.g. '2%' or '0.01'")
    if isinstance(text, int | float):
        value, relative = float(text), False
    else:
        match = _TOLERANCE_RE.fullmatch(str(text))
        if match is None:
            raise ValueError(
                f"tolerance {text!r} does not parse: write a relative '2%' or an absolute '0.01'"
            )
        value = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
        relative = bool(match.group(2))
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance {text!r} must be a finite number >= 0")
    return Tolerance(value, relative)
