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

Every law gets its units, whatever its exponents: a rational one is written exactly in the
constant's unit (``m**(4/3)``, a fraction up to :data:`MAX_DENOMINATOR`), and a fitted power
of a quantity whose unit no string writes (``r**1.000234567``: pint prints ``m**1.00023``)
is taken of the base measured in a unit constant of value 1 (``(r/c1)**1.000234567``,
``c1: {value: 1.0, unit: m}``), so no constant needs an exponent a unit string cannot write.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

import sympy as sp

from modreg.distill._snap import snap_constant
from modreg.errors import DistillError, InvalidUnit
from modreg.spec.equations import DIMENSIONLESS_FUNCTIONS
from modreg.spec.expr import Dot, Norm
from modreg.spec.units import parse_unit, unit_registry

__all__ = ["MAX_DENOMINATOR", "UnitConstant", "attach_units", "inline"]

MAX_DENOMINATOR = 12  # a unit's exponent is written as a fraction up to this: m**(4/3)


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


def _fraction(exponent: float) -> Fraction | None:
    """The fraction (denominator at most :data:`MAX_DENOMINATOR`) an exponent is, to float
    rounding (``4/3`` for 1.3333333333333333), else None (a fitted 1.00023)."""
    if not math.isfinite(exponent):
        return None
    frac = Fraction(exponent).limit_denominator(MAX_DENOMINATOR)
    return frac if abs(float(frac) - exponent) <= 1e-9 * max(1.0, abs(exponent)) else None


def _fraction_text(unit: Any) -> str:
    """``m**(4/3)*s**-1``: each factor with its exponent written exactly (pint prints 1.33333)."""
    registry, parts = unit_registry(), []
    for name, exponent in cast("dict[str, float]", dict(unit._units)).items():
        frac = _fraction(float(exponent))
        if frac is None:
            raise DistillError(f"the exponent {exponent} of {name} is no simple fraction")
        symbol = registry.get_symbol(name)
        power = "" if frac == 1 else f"**{frac}" if frac.denominator == 1 else f"**({frac})"
        parts.append(symbol + power)
    return "*".join(parts) or "dimensionless"


def _written(unit: Any) -> str | None:
    """A unit string modreg's unit parser accepts, equal to ``unit`` (compact when possible),
    or None when there is none (pint prints ``m**1.000234567`` as ``m**1.00023``)."""
    for spec in ("~C", "C", "fraction"):
        try:
            text = _fraction_text(unit) if spec == "fraction" else format(unit, spec)
            if _same(parse_unit(text or "dimensionless"), unit):
                return text or "dimensionless"
        except (InvalidUnit, DistillError):
            continue
    return None


def _unit_text(unit: Any) -> str:
    """:func:`_written`, or a refusal (the powers of :meth:`_Fixer.power` avoid it)."""
    text = _written(unit)
    if text is not None:
        return text
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
            dimensionless = unit_registry().dimensionless
            powered = unit ** float(exponent)
            if _same(unit, dimensionless) or _written(powered) is not None:
                return fixed**exponent, powered
            # A fitted power of a quantity (r**1.000234567) has no unit string: measure the
            # base in a unit constant of its own (r/c1, c1 = 1 m): the power is dimensionless.
            return (fixed / self.new_constant(1.0, unit)) ** exponent, dimensionless
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
