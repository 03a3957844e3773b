"""The one table of the equation grammar's functions, and the names the grammar reserves.

Every part of modreg that knows about a function reads it from :data:`GRAMMAR`: the parser
(:mod:`modreg.spec.expr`) builds the sympy object it names, the unit check
(:mod:`modreg.spec.equations`) asks whether its argument must be dimensionless, the torch
printer (:mod:`modreg.runtime._codegen`) emits its torch call, and distillation uses its
domain to know where a candidate can be evaluated. Adding a function is one row here (and a
test in ``tests/test_grammar_table.py`` checks that every consumer agrees with the table).

Only the functions and ``pi`` are reserved: every other identifier (``E``, ``I``, ``S``,
``N``, ``beta``, ...) is an ordinary name, so energy and current can be called ``E`` and
``I``. This module imports nothing heavy (the manifest reads :data:`RESERVED_NAMES` on the
pull path); the sympy objects are resolved by the parser.

Example:
    >>> FUNCTION_TABLE["acos"].domain
    (-1.0, 1.0)
    >>> float(FUNCTION_TABLE["sinc"].numpy_function()(0.0))
    1.0
    >>> "E" in RESERVED_NAMES
    False
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["FUNCTION_TABLE", "GRAMMAR", "RESERVED_NAMES", "GrammarFunction"]

_INF = math.inf


@dataclass(frozen=True)
class GrammarFunction:
    """One function of the grammar.

    Attributes:
        name: how equations spell it (``sqrt``).
        arity: number of arguments.
        sympy: the sympy builder, as an attribute of ``sympy`` (``"sqrt"``) or one of the
            grammar's own classes in :mod:`modreg.spec.expr` (``"Norm"``, ``"Dot"``).
        torch: the torch function the generated code calls.
        numpy: the numpy function distillation evaluates candidates with ("" for the
            vector functions, which distillation never builds).
        dimensionless: the argument must be (coherently) dimensionless, and so is the value.
        domain: the real interval of the argument where the value is real and finite
            (open or closed does not matter for sampling checks).
        per_pi: the torch and numpy functions take the argument in units of pi, so it is
            divided by pi before the call: the grammar's ``sinc(x)`` is sin(x)/x (sympy's,
            1 at 0), torch's and numpy's ``sinc(x)`` the normalised sin(pi*x)/(pi*x).
    """

    name: str
    arity: int
    sympy: str
    torch: str
    numpy: str
    dimensionless: bool
    domain: tuple[float, float] = (-_INF, _INF)
    per_pi: bool = False

    @property
    def elementwise(self) -> bool:
        """A one-argument function sympy keeps as its own node (``sqrt`` becomes a power)."""
        return self.arity == 1 and self.name not in ("sqrt", "norm")

    def numpy_function(self) -> Callable[[Any], Any]:
        """The numpy callable computing this function (``per_pi`` applied), for evaluators."""
        import numpy as np  # lazily: the manifest reads this module on the pull path

        function: Callable[[Any], Any] = getattr(np, self.numpy)
        if not self.per_pi:
            return function
        return lambda x: function(np.divide(x, np.pi))


GRAMMAR: tuple[GrammarFunction, ...] = (
    GrammarFunction("sqrt", 1, "sqrt", "torch.sqrt", "sqrt", False, (0.0, _INF)),
    GrammarFunction("exp", 1, "exp", "torch.exp", "exp", True, (-_INF, 709.0)),
    GrammarFunction("log", 1, "log", "torch.log", "log", True, (0.0, _INF)),
    GrammarFunction("sin", 1, "sin", "torch.sin", "sin", True),
    GrammarFunction("cos", 1, "cos", "torch.cos", "cos", True),
    GrammarFunction("tan", 1, "tan", "torch.tan", "tan", True),
    GrammarFunction("sinc", 1, "sinc", "torch.sinc", "sinc", True, per_pi=True),
    GrammarFunction("asin", 1, "asin", "torch.asin", "arcsin", True, (-1.0, 1.0)),
    GrammarFunction("acos", 1, "acos", "torch.acos", "arccos", True, (-1.0, 1.0)),
    GrammarFunction("atan", 1, "atan", "torch.atan", "arctan", True),
    GrammarFunction("sinh", 1, "sinh", "torch.sinh", "sinh", True, (-710.0, 710.0)),
    GrammarFunction("cosh", 1, "cosh", "torch.cosh", "cosh", True, (-710.0, 710.0)),
    GrammarFunction("tanh", 1, "tanh", "torch.tanh", "tanh", True),
    GrammarFunction("abs", 1, "Abs", "torch.abs", "abs", False),
    GrammarFunction("norm", 1, "Norm", "torch.linalg.vector_norm", "", False),
    GrammarFunction("dot", 2, "Dot", "torch.sum", "", False),
)
FUNCTION_TABLE: dict[str, GrammarFunction] = {f.name: f for f in GRAMMAR}
# The constant the grammar names; everything else is the caller's.
CONSTANTS = frozenset({"pi"})
RESERVED_NAMES: frozenset[str] = frozenset(FUNCTION_TABLE) | CONSTANTS
