"""Symbolic distillation: turn a dataset (or a trained network) into a concise equation.

The method, cheapest first:

1. dimensional analysis (Buckingham pi) splits y = P(x) * g(pi groups), with P a product of
   powers carrying y's unit, so the search sees fewer, dimensionless variables; when the units
   do not fit (a wrong entry) the raw variables are searched instead;
2. sparse linear least squares over term libraries (generalised power laws, sums of terms on
   transformed targets, rational forms) finds most physical laws in milliseconds;
3. constants are snapped to simple exact numbers (rationals, pi, sqrt(2), e) and refitted;
4. the simplest exact point of the accuracy/complexity Pareto front is returned.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(1, 2, size=(500, 2))
    >>> distill_arrays(X, X[:, 0] * X[:, 1] ** 2, ["a", "b"], time_budget=20).expression
    'a*b**2'
"""

from __future__ import annotations

from modreg.distill._dimensional import DAVariant, dimensional_variants
from modreg.distill._engine import DistillResult, ParetoPoint, distill_arrays
from modreg.distill._run import DistillReport, OutputReport, distill_module

__all__ = [
    "DAVariant",
    "DistillReport",
    "DistillResult",
    "OutputReport",
    "ParetoPoint",
    "dimensional_variants",
    "distill_arrays",
    "distill_module",
]
