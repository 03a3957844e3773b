"""Static checks of an equation module: every output's expression has the port's unit and shape.

Rules, quoted by the tests:

- An expression may use the module's input ports and constants, never its outputs.
- Units follow pint's algebra: ``*`` and ``/`` multiply units, ``x**p`` with a numeric ``p``
  raises the unit to ``p`` (``sqrt`` and ``**0.5`` allowed); a non-numeric exponent needs a
  dimensionless base and exponent.  The terms of ``+``/``-`` must have the same unit.
  the functions marked dimensionless in :data:`modreg.spec.grammar.GRAMMAR` (``exp log sin
  cos tan asin acos atan sinh cosh tanh``) need a dimensionless argument;
  ``abs`` and ``norm`` keep the unit; ``dot`` multiplies the units.
- Units must be *coherent*: the expression's unit must equal the port's, dimension **and**
  scale.  An expression in ``g*m/s**2`` for a port in ``N`` is refused, with the factor, since
  the generated code never inserts conversion factors inside an equation.  Likewise the terms
  of a sum (``km + m``) and the arguments of ``sin`` (degrees) must agree in scale.
- Shapes are per sample: a scalar ``()`` broadcasts with anything; otherwise elementwise
  operations need equal shapes; ``norm(x)`` and ``dot(x, y)`` reduce the last axis.  A list
  constant has shape ``(len,)``.
- The check runs on the expression as sympy evaluates it (``x - x + r`` is just ``r``), which
  is also what the generated code computes.
- Offset units (``degC``) are treated by their scale only.
- The value must be computable: finite everywhere inside the declared input ranges, or, for
  inputs without ranges, finite somewhere (``acos(2)`` and ``exp(exp(exp(exp(10))))`` are
  refused; see :mod:`modreg.spec._finite`).

Example:
    >>> expression_unit(parse_expression("m * a", ["m", "a"]), {"m": "kg", "a": "m/s**2"})
    'kg*m/s**2'
    >>> infer_shape(parse_expression("norm(v) * v", ["v"]), {"v": (3,)})
    (3,)
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

import sympy as sp

from modreg.errors import DimensionError, InvalidExpression
from modreg.spec._finite import check_finite
from modreg.spec.expr import Dot, Norm, format_expression, parse_expression, sympy_builder
from modreg.spec.grammar import GRAMMAR
from modreg.spec.manifest import Manifest, Port
from modreg.spec.units import parse_unit, unit_registry

__all__ = [
    "EquationSymbol",
    "check_equations",
    "equation_symbols",
    "expression_dimension",
    "expression_unit",
    "infer_shape",
]

Shape = tuple[int, ...]
# Functions whose argument must be dimensionless (and whose value is), from the grammar table.
DIMENSIONLESS_FUNCTIONS = tuple(sympy_builder(f.name) for f in GRAMMAR if f.dimensionless)


@dataclass(frozen=True)
class EquationSymbol:
    """A name an equation may use: an input port or a constant, with its unit and shape."""

    name: str
    role: Literal["input", "constant"]
    unit: str
    shape: Shape


def equation_symbols(manifest: Manifest) -> dict[str, EquationSymbol]:
    """The names available to the manifest's equations: inputs, then constants (not outputs)."""
    symbols = {
        name: EquationSymbol(name, "input", port.unit, port.shape)
        for name, port in manifest.inputs.items()
    }
    for name, constant in manifest.constants.items():
        symbols[name] = EquationSymbol(name, "constant", constant.unit, constant.shape)
    return symbols


# --- unit algebra ---------------------------------------------------------------------------


def _plain(exponent: Fraction) -> int | float:
    return int(exponent) if exponent.denominator == 1 else float(exponent)


def _rational(value: Any) -> Fraction:
    """An exponent (int, float, Fraction, sympy Rational) as a Fraction; floats within 1e-12 of
    a small fraction (0.333...) snap to it, and other floats mean the decimal they print as
    (0.834 is 417/500, so 1 + 0.834 is exactly the 1.834 of a constant's unit)."""
    exact = Fraction(repr(value)) if isinstance(value, float) else Fraction(str(value))
    near = exact.limit_denominator(64)
    return near if math.isclose(near, exact, rel_tol=0, abs_tol=1e-12) else exact


@dataclass(frozen=True)
class _Unit:
    """A product of pint units with rational exponents, e.g. ``{'kilogram': 1, 'second': -2}``."""

    powers: tuple[tuple[str, Fraction], ...] = ()

    def __mul__(self, other: _Unit) -> _Unit:
        powers = dict(self.powers)
        for name, exp in other.powers:
            powers[name] = powers.get(name, Fraction(0)) + exp
        return _Unit(tuple(sorted((n, e) for n, e in powers.items() if e != 0)))

    def __pow__(self, exponent: Fraction) -> _Unit:
        return _Unit(tuple((n, e * exponent) for n, e in self.powers if e * exponent != 0))

    @functools.cached_property
    def dimensions(self) -> dict[str, Fraction]:
        dims: dict[str, Fraction] = {}
        for name, exp in self.powers:
            for dim, dim_exp in unit_registry().get_dimensionality(name).items():
                dims[dim] = dims.get(dim, Fraction(0)) + _rational(dim_exp) * exp
        return {dim: exp for dim, exp in sorted(dims.items()) if exp != 0}

    @functools.cached_property
    def scale(self) -> float:
        """The factor to coherent SI base units (``g`` -> 0.001)."""
        scale = 1.0
        for name, exp in self.powers:
            factor: Any = unit_registry().get_base_units(name)[0]
            scale *= float(factor) ** float(exp)
        return scale

    @property
    def coherent_dimensionless(self) -> bool:
        return not self.dimensions and math.isclose(self.scale, 1.0, rel_tol=1e-9)

    def __str__(self) -> str:
        from pint.util import UnitsContainer

        container = UnitsContainer({n: _plain(e) for n, e in self.powers})
        return format(unit_registry().Unit(container), "~C") or "dimensionless"

    def describe(self) -> str:
        """``kg/s**2 ([mass] / [time] ** 2)``, or just ``dimensionless``."""
        text = str(self)
        dims = _describe_dimensions(self.dimensions)
        return text if text == dims else f"{text} ({dims})"


def _describe_dimensions(dims: Mapping[str, Fraction]) -> str:
    from pint.util import UnitsContainer

    return str(UnitsContainer({d: _plain(e) for d, e in dims.items()})) if dims else "dimensionless"


_DIMENSIONLESS = _Unit()


@functools.lru_cache(maxsize=1024)
def _parse_unit(text: str) -> _Unit:
    units = parse_unit(text)._units
    return _Unit(tuple(sorted((name, _rational(exp)) for name, exp in units.items())))


def _same_unit(a: _Unit, b: _Unit) -> bool:
    return a.dimensions == b.dimensions and math.isclose(a.scale, b.scale, rel_tol=1e-9)


def _text(expr: Any) -> str:
    try:
        return format_expression(expr)
    except InvalidExpression:
        return str(expr)


class _UnitWalker:
    """Computes the unit of an expression bottom-up, refusing inconsistent units."""

    def __init__(self, units: Mapping[str, str]) -> None:
        self.units = units

    def unit(self, expr: Any) -> _Unit:
        if isinstance(expr, sp.Symbol):
            return self.symbol(expr.name)
        if expr.is_Number or expr.is_NumberSymbol:
            return _DIMENSIONLESS
        handler = self._HANDLERS.get(type(expr))
        if handler is None:
            handler = _UnitWalker.function if expr.func in DIMENSIONLESS_FUNCTIONS else None
        if handler is None:
            raise InvalidExpression(f"cannot check units of {_text(expr)} ({type(expr).__name__})")
        return handler(self, expr)

    def symbol(self, name: str) -> _Unit:
        if name not in self.units:
            available = ", ".join(self.units)
            raise InvalidExpression(f"unknown name {name!r}: the names available are {available}")
        return _parse_unit(self.units[name])

    def add(self, expr: Any) -> _Unit:
        first, *rest = expr.args
        unit = self.unit(first)
        for term in rest:
            other = self.unit(term)
            if not _same_unit(unit, other):
                raise DimensionError(
                    f"the terms of a sum must have the same unit, but {_text(first)} has unit "
                    f"{unit.describe()} and {_text(term)} has unit {other.describe()}"
                    + _scale_hint(other, unit, _text(term))
                )
        return unit

    def mul(self, expr: Any) -> _Unit:
        unit = _DIMENSIONLESS
        for factor in expr.args:
            unit = unit * self.unit(factor)
        return unit

    def power(self, expr: Any) -> _Unit:
        base, exponent = expr.args
        base_unit = self.unit(base)
        if exponent.is_Number:
            return base_unit ** _rational(float(exponent) if exponent.is_Float else str(exponent))
        exponent_unit = self.unit(exponent)
        for part, unit in ((base, base_unit), (exponent, exponent_unit)):
            if not unit.coherent_dimensionless:
                raise DimensionError(
                    f"{_text(expr)}: a power with a non-numeric exponent needs a dimensionless "
                    f"base and exponent, but {_text(part)} has unit {unit.describe()}"
                )
        return _DIMENSIONLESS

    def function(self, expr: Any) -> _Unit:
        (arg,) = expr.args
        unit = self.unit(arg)
        if not unit.coherent_dimensionless:
            name = type(expr).__name__
            raise DimensionError(
                f"{name}() needs a dimensionless argument, but {_text(arg)} has unit "
                f"{unit.describe()}" + _scale_hint(unit, _DIMENSIONLESS, _text(arg))
            )
        return _DIMENSIONLESS

    def same(self, expr: Any) -> _Unit:
        return self.unit(expr.args[0])

    _HANDLERS: ClassVar[dict[type, Callable[[_UnitWalker, Any], _Unit]]] = {
        sp.Add: add,
        sp.Mul: mul,
        sp.Pow: power,
        sp.Abs: same,
        Norm: same,
        Dot: mul,
    }


def _scale_hint(unit: _Unit, target: _Unit, subject: str) -> str:
    """Advice when ``unit`` has ``target``'s dimension but another scale (``g`` vs ``kg``)."""
    if unit.dimensions != target.dimensions:
        return ""
    factor = unit.scale / target.scale
    return (
        f"; the dimensions agree but the scales do not (1 {unit} = {factor:.6g} {target}): "
        f"multiply {subject} by {factor:.6g} or use coherent units"
    )


def _unit_of(expr: Any, units: Mapping[str, str]) -> _Unit:
    return _UnitWalker(units).unit(expr)


def expression_unit(expr: Any, units: Mapping[str, str]) -> str:
    """The unit of ``expr`` (a sympy expression from :func:`parse_expression`) as a pint string.

    Args:
        expr: the expression.
        units: unit string of every name the expression uses.

    Raises:
        DimensionError: the expression mixes units inconsistently.
        InvalidExpression: a name has no unit.
    """
    return str(_unit_of(expr, units))


def expression_dimension(expr: Any, units: Mapping[str, str]) -> Any:
    """The dimension of ``expr`` as a pint ``UnitsContainer`` (compare to ``Unit.dimensionality``).

    Example:
        >>> g_m1_m2 = parse_expression("G*m1*m2/r**2", ["G", "m1", "m2", "r"])
        >>> units = {"G": "m**3/(kg*s**2)", "m1": "kg", "m2": "kg", "r": "m"}
        >>> expression_dimension(g_m1_m2, units) == parse_unit("N").dimensionality
        True
    """
    from pint.util import UnitsContainer

    dims = _unit_of(expr, units).dimensions
    return UnitsContainer({dim: _plain(exp) for dim, exp in dims.items()})


# --- shapes ---------------------------------------------------------------------------------


def _shape_text(shape: Shape) -> str:
    return str(list(shape))


def infer_shape(expr: Any, shapes: Mapping[str, Shape]) -> Shape:
    """The per-sample shape of ``expr`` given the shape of each name (``()`` is a scalar).

    Raises:
        DimensionError: elementwise operands of different non-scalar shapes; ``norm``/``dot``
            of a scalar; ``dot`` of different shapes.
        InvalidExpression: a name has no shape.
    """
    if isinstance(expr, sp.Symbol):
        if expr.name not in shapes:
            available = ", ".join(shapes)
            raise InvalidExpression(
                f"unknown name {expr.name!r}: the names available are {available}"
            )
        return tuple(shapes[expr.name])
    if not expr.args:
        return ()
    arg_shapes = [infer_shape(arg, shapes) for arg in expr.args]
    if isinstance(expr, (Norm, Dot)):
        return _reduce_shape(expr, arg_shapes)
    return _broadcast(expr, arg_shapes)


def _reduce_shape(expr: Any, arg_shapes: list[Shape]) -> Shape:
    name = "norm" if isinstance(expr, Norm) else "dot"
    if any(shape == () for shape in arg_shapes):
        instead = "abs(x)" if name == "norm" else "x*y"
        raise DimensionError(
            f"{_text(expr)}: {name}() reduces the last axis of a vector, but an argument is a "
            f"scalar; write {instead} for scalars"
        )
    if len(set(arg_shapes)) > 1:
        shapes = " and ".join(_shape_text(s) for s in arg_shapes)
        raise DimensionError(f"{_text(expr)}: dot() needs equal shapes, got {shapes}")
    return arg_shapes[0][:-1]


def _broadcast(expr: Any, arg_shapes: list[Shape]) -> Shape:
    result: Shape = ()
    for arg, shape in zip(expr.args, arg_shapes, strict=True):
        if shape == () or shape == result:
            continue
        if result != ():
            raise DimensionError(
                f"shapes do not match in {_text(expr)}: {_text(arg)} has shape "
                f"{_shape_text(shape)} but another operand has shape {_shape_text(result)}; "
                "elementwise operations need equal shapes or a scalar"
            )
        result = shape
    return result


# --- the manifest check ---------------------------------------------------------------------


def check_equations(manifest: Manifest) -> None:
    """Check every output's equation: grammar, names, unit (dimension and scale) and shape.

    Raises:
        InvalidExpression: text outside the grammar, or a name that is not an input/constant.
        DimensionError: a unit or shape that does not fit the expression or the output port.
    """
    symbols = equation_symbols(manifest)
    for output, text in (manifest.equation or {}).items():
        try:
            _check_one(manifest, symbols, output, text)
        except (InvalidExpression, DimensionError) as exc:
            raise type(exc)(f"equation for output {output!r}: {exc}") from exc


def _check_one(
    manifest: Manifest, symbols: Mapping[str, EquationSymbol], output: str, text: str
) -> None:
    port = manifest.outputs[output]
    expr = _parse(manifest, symbols, text)
    shown = _shorten(" ".join(text.split()))
    unit = _unit_of(expr, {name: s.unit for name, s in symbols.items()})
    declared = _parse_unit(port.unit)
    if not _same_unit(unit, declared):
        raise DimensionError(
            f"{shown} has unit {unit.describe()} but port {output!r} is declared "
            f"{port.unit} ({_describe_dimensions(declared.dimensions)})"
            + (_scale_hint(unit, declared, shown) or "; fix the equation or the port's unit")
        )
    _check_shape(expr, symbols, output, port, shown)
    check_finite(
        expr,
        {name: p.range for name, p in manifest.inputs.items()},
        {name: c.value for name, c in manifest.constants.items()},
        {name: p.shape for name, p in manifest.inputs.items()},
        shown,
    )


def _check_shape(
    expr: Any, symbols: Mapping[str, EquationSymbol], output: str, port: Port, shown: str
) -> None:
    shape = infer_shape(expr, {name: s.shape for name, s in symbols.items()})
    if shape != port.shape:
        raise DimensionError(
            f"{shown} has shape {_shape_text(shape)} but port {output!r} is declared shape "
            f"{_shape_text(port.shape)}; fix the equation or the port's shape"
        )


def _parse(manifest: Manifest, symbols: Mapping[str, EquationSymbol], text: str) -> Any:
    try:
        return parse_expression(text, symbols)
    except InvalidExpression:
        used = set(re.findall(r"(?<![\w.])[A-Za-z_]\w*", text))
        outputs = sorted(used & set(manifest.outputs) - set(symbols))
        if outputs:
            available = ", ".join(symbols) or "none"
            raise InvalidExpression(
                f"uses output {outputs[0]!r}: an equation may use only the inputs and constants "
                f"({available}), not outputs"
            ) from None
        raise


def _shorten(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
