"""Give fitted numbers their units, so a distilled equation passes modreg's dimension check.

The search returns plain numbers: ``6.674e-11*m1*m2/r**2`` for a force. A number in a
manifest equation is dimensionless, so that text would be refused at publish (kg²/m² is not
N). Each number that has to carry a unit becomes a named constant instead
(``c1*m1*m2/r**2`` with ``c1: {value: 6.674e-11, unit: N*m**2/kg**2}``); numbers that are
already consistent (the ``2`` and ``pi`` of ``2*pi*sqrt(L/g)``) stay in the text.

The rule, applied top-down: a sum takes the required unit term by term; in a term
``coefficient * rest``, when ``rest`` has the required unit the coefficient stays a number,
otherwise the coefficient becomes a constant of unit ``required / unit(rest)``; arguments of
``exp``, ``sin``... are required to be dimensionless the same way. Units are combined with
pint as exact unit products, so the constant's unit makes the check hold exactly, scale
included (a ``g`` input against a ``N`` target gives a constant in ``N/(g*m/s**2)``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import sympy as sp

from modreg.distill._snap import snap_constant
from modreg.errors import DistillError, InvalidUnit
from modreg.spec.equations import DIMENSIONLESS_FUNCTIONS
from modreg.spec.expr import Dot, Norm
from modreg.spec.units import parse_unit, unit_registry

__all__ = ["UnitConstant", "attach_units", "inline"]


@dataclass(frozen=True)
class UnitConstant:
    """A fitted number that carries a unit: written under ``constants:``."""

    value: float
    unit: str


def _same(a: Any, b: Any) -> bool:
    """Whether two pint units are equal in dimension and scale. Exponents are compared to
    1e-9: a fitted power's ``kg**0.096`` is, in binary, ``kg**0.09600000000000009``."""
    ratio = unit_registry().Quantity(1.0, a / b).to_base_units()
    exponents = [cast(float, e) for e in dict(ratio.dimensionality).values()]
    if not all(abs(e) < 1e-9 for e in exponents):
        return False
    return abs(float(ratio.magnitude) - 1.0) < 1e-9


def _unit_text(unit: Any) -> str:
    """A unit string modreg's unit parser accepts, equal to ``unit`` (compact when possible)."""
    for spec in ("~C", "C"):
        text = format(unit, spec) or "dimensionless"
        try:
            if _same(parse_unit(text), unit):
                return text
        except InvalidUnit:
            continue
    raise DistillError(
        f"cannot write the unit {unit} of a fitted constant as a unit string: "
        "use simpler units for the data columns"
    )


@dataclass
class _Fixer:
    """Walks an expression, turning unit-carrying coefficients into named constants."""

    units: Mapping[str, Any]  # symbol name -> pint unit
    taken: set[str]
    constants: dict[str, UnitConstant] = field(default_factory=dict)

    def new_constant(self, value: float, unit: Any) -> sp.Symbol:
        index = 1
        while f"c{index}" in self.taken:
            index += 1
        name = f"c{index}"
        self.taken.add(name)
        self.constants[name] = UnitConstant(value, _unit_text(unit))
        self.units = {**self.units, name: unit}
        return sp.Symbol(name, real=True)

    def fit(self, expr: Any, target: Any) -> Any:
        """``expr`` rewritten so that its unit is ``target``."""
        if isinstance(expr, sp.Add):
            return sp.Add(*[self.fit(term, target) for term in expr.args])
        coefficient, rest = expr.as_coeff_Mul()
        if rest == 1:
            if _same(target, unit_registry().dimensionless):
                return expr
            return self.new_constant(float(coefficient), target)
        fixed, unit = self.free(rest)
        if _same(unit, target):
            return coefficient * fixed
        return self.new_constant(float(coefficient), target / unit) * fixed

    def free(self, expr: Any) -> tuple[Any, Any]:
        """``expr`` with its insides made consistent, and the unit it then has."""
        dimensionless = unit_registry().dimensionless
        if isinstance(expr, sp.Symbol):
            return expr, self.units[expr.name]
        if expr.is_Number or expr.is_NumberSymbol:
            return expr, dimensionless
        if isinstance(expr, sp.Mul):
            return self.product(expr.args)
        if isinstance(expr, sp.Pow):
            return self.power(expr)
        if isinstance(expr, sp.Add):
            return self.sum(expr)
        if isinstance(expr, (sp.Abs, Norm)):
            arg, unit = self.free(expr.args[0])
            return expr.func(arg), unit
        if isinstance(expr, Dot):
            return self.product(expr.args, combine=Dot)
        if expr.func in DIMENSIONLESS_FUNCTIONS:
            return expr.func(self.fit(expr.args[0], dimensionless)), dimensionless
        raise DistillError(
            f"cannot give units to {type(expr).__name__} in the distilled equation: "
            "rerun with dimensionless data or report this expression"
        )

    def product(self, factors: Collection[Any], combine: Any = sp.Mul) -> tuple[Any, Any]:
        unit = unit_registry().dimensionless
        fixed = []
        for factor in factors:
            part, part_unit = self.free(factor)
            fixed.append(part)
            unit = unit * part_unit
        return combine(*fixed), unit

    def power(self, expr: Any) -> tuple[Any, Any]:
        base, exponent = expr.args
        if exponent.is_Number:
            fixed, unit = self.free(base)
            return fixed**exponent, unit ** float(exponent)
        dimensionless = unit_registry().dimensionless
        fixed_base = self.fit(base, dimensionless)
        return fixed_base ** self.fit(exponent, dimensionless), dimensionless

    def sum(self, expr: Any) -> tuple[Any, Any]:
        """A sum takes the unit of its first term without a coefficient (it cannot change)."""
        dimensionless = unit_registry().dimensionless
        rigid = [term for term in expr.args if term.as_coeff_Mul()[0] == 1 and not term.is_Number]
        unit = self.free(rigid[0])[1] if rigid else dimensionless
        return self.fit(expr, unit), unit


def attach_units(
    expr: Any, units: Mapping[str, str], target: str, *, taken: Collection[str] = ()
) -> tuple[Any, dict[str, UnitConstant]]:
    """Rewrite ``expr`` so that its unit is ``target``, moving numbers into constants.

    Args:
        expr: sympy expression over real symbols named in ``units`` (ports), numbers inline.
        units: unit string of every symbol.
        target: the unit the expression must have (the output port's).
        taken: names constants must not use (ports, earlier constants).

    Returns:
        The expression over ports and new constants ``c1, c2, ...``, and those constants.

    Raises:
        DistillError: a part of the expression cannot be given units.

    Example:
        >>> from modreg.spec.expr import format_expression
        >>> m, a = sp.symbols("m a", real=True)
        >>> eq, consts = attach_units(3.5 * m * a, {"m": "kg", "a": "m/s**2"}, "kg*m/s**2")
        >>> format_expression(eq), consts
        ('3.5*a*m', {})
    """
    fixer = _Fixer({n: parse_unit(u) for n, u in units.items()}, set(taken) | set(units))
    fixed = fixer.fit(expr, parse_unit(target))
    return fixed, fixer.constants


def inline(expr: Any, constants: Mapping[str, UnitConstant]) -> Any:
    """``expr`` with each constant replaced by its value (for showing the law with numbers):
    an integer as one (``1``, not ``1.0``), a short decimal as written (``0.3``), and a
    simple number to float precision exactly (``8/3``, not ``2.6666666666666665``)."""

    def number(value: float) -> Any:
        if value.is_integer() and abs(value) < 1e15:
            return sp.Integer(int(value))
        if float(f"{value:.6g}") == value:
            return sp.Float(value)
        exact = snap_constant(value, rel_tol=1e-12)
        return exact if exact is not None else sp.Float(value)

    return expr.subs({sp.Symbol(n, real=True): number(c.value) for n, c in constants.items()})
