"""Symbolic distillation: turn a dataset (or a trained network) into a concise equation.

The method (:func:`distill_arrays`), cheapest stage first, stopping at the first exact law:

1. dimensional analysis (Buckingham pi) splits y = P(x) * g(pi groups), with P a product of
   powers carrying y's unit, so the search sees fewer, dimensionless variables; the raw
   variables are always searched too, so one wrong unit entry cannot block a law;
2. sparse linear least squares over term libraries: generalised power laws in primitive
   factors (1 + s*m, sin/cos/exp of simple arguments), sums of terms on transformed targets
   (square, inverse, log, trig and their inverses), rational forms and dense polynomials;
   clean power factors are "peeled" into the prefactor (multiplicative separability);
3. structure from an oracle (given, or a small torch MLP surrogate): pairs of inputs that
   enter only as x - y, x / y or x * y are merged and the smaller problem refitted on the data;
   a given oracle (a network teacher) is also tested for additive and multiplicative
   separability, and each half distilled on its own, recursively (``_separable``);
4. constants are snapped to simple exact numbers (rationals, pi, sqrt(2), e), the equation is
   re-scored on all rows and tidied, and the simplest exact point of the accuracy/complexity
   Pareto front is returned; for a network teacher, points are settled to its error level
   and chosen by the rule of ``_select`` (``SELECTION_RULE``).

The stages are one ordered table (``_stages.STAGES``). Tasks run on ``workers`` processes
from a fork server and are collected in a fixed order; every task is bounded by work, not
time, so a seed gives the same equation on any machine. The time budget is an enforced cap:
when it bites, the best point so far is returned with ``timed_out=True``.

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
