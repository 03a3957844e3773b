"""The one selection rule: which point of the accuracy/complexity front is the answer.

``RULE`` is the text written into ``pareto.json`` and the README; it describes exactly what
:func:`select` does.

Why description length and not "within x % of the best error": a trained network carries
its own, systematic error of size sigma. Below sigma, error is cheap (a point at 0.5 sigma
saves only 16 bits, three nodes, over one at sigma), so a 60-node curve that models the
network's own error loses to the short law; above sigma every extra unit of error must be
paid for by saved nodes, so a simpler form three times worse than sigma (``m0/cos(v/c)``
for ``m0/sqrt(1 - v**2/c**2)``) loses to the true one, and so does a form whose constant is
a little off (``c**2*k/(8*r**2)`` for ``3*c**2*k/(8*pi*r**2)``) even when both are within
2 sigma. The teacher's error is systematic, not independent noise per sample, so it counts
as ``N_EFF`` pieces of evidence however many samples were drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from modreg.distill._problem import EXACT_REL

CHEAP_COST = 4.5  # exact constants this cheap by the prior of ._snap count as one node (1/(4*pi))
FLOAT_COST = 3  # a fitted number: about 10 bits at the precision a network teacher has

__all__ = [
    "BITS_PER_NODE",
    "MEETS",
    "N_EFF",
    "RULE",
    "SELECTION_RULE",
    "UNRECORDED_ERROR",
    "description_length",
    "meets",
    "select",
    "trimmed_rms",
]

MEETS = 2.0  # a law within twice the teacher's measured error fits it as well as its truth
N_EFF = 100
# A network teacher that records no error of its own is taken to be right to about 1 % of its
# output's RMS: catalogue MLPs fitted to a smooth law land there (the README's showcase).
UNRECORDED_ERROR = 0.01
TRIM = 0.02  # a teacher's error is heavy-tailed at its domain's edges (asin near 1): the
# worst 2 % of the fresh draws are set aside when a law is scored against it
BITS_PER_NODE = 5.0  # about log2 of the symbols a node can be (operators, functions, names)
RULE = (
    f"the point of least description length {N_EFF}/2*log2(1 + (rmse/s)**2) + "
    f"{BITS_PER_NODE:g}*complexity bits, s the noise level sigma (the teacher's recorded "
    f"error, else {UNRECORDED_ERROR:g} of its output's RMS, the error a trained network "
    "typically keeps), or the least error on the front when sigma is unknown (exact data); "
    f"complexity counts a fitted number as {FLOAT_COST}, an exact one as 1, or 2 beyond "
    f"prior cost {CHEAP_COST:g}; errors are measured on draws the search never saw when a "
    f"teacher can be queried (the RMSE of all but the worst {TRIM:.0%} of them)"
)


# The whole rule as pareto.json and the README state it (a test keeps the README in step).
SELECTION_RULE = (
    f"the simplest exact point (max relative error < {EXACT_REL:g} on every sample) if there "
    f"is one; otherwise {RULE}"
)


class Scored(Protocol):
    @property
    def complexity(self) -> int: ...

    @property
    def rmse(self) -> float: ...


def trimmed_rms(residuals: NDArray[np.float64]) -> float:
    """RMS of all but the largest :data:`TRIM` share of ``residuals`` (inf if any is not
    finite: a law undefined somewhere is never rescued by trimming)."""
    if residuals.size == 0 or not np.all(np.isfinite(residuals)):
        return math.inf
    squares = np.sort(np.square(residuals))
    keep = max(1, math.ceil(squares.size * (1 - TRIM)))
    return float(np.sqrt(np.mean(squares[:keep])))


def description_length(rmse: float, complexity: int, sigma: float) -> float:
    """Bits to state the law and its misfit at noise level ``sigma``."""
    if not math.isfinite(rmse):
        return math.inf
    ratio = rmse / sigma if sigma > 0 else (0.0 if rmse == 0 else math.inf)
    return N_EFF / 2 * math.log2(1 + ratio**2) + BITS_PER_NODE * complexity


def meets(rmse: float, sigma: float) -> bool:
    """Whether an error is at the noise level (never for sigma 0: then only exact counts)."""
    return sigma > 0 and rmse <= MEETS * sigma


def select(points: Sequence[Scored], sigma: float) -> int:
    """Index of the chosen point (see :data:`RULE`); ties go to the simpler point."""
    if not points:
        raise ValueError("no points to choose from")
    floor = sigma if sigma > 0 else min(p.rmse for p in points)
    return min(
        range(len(points)),
        key=lambda i: (
            description_length(points[i].rmse, points[i].complexity, floor),
            points[i].complexity,
            i,
        ),
    )
