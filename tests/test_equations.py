"""Equation checks: names, units (dimension and scale) and shapes against the output ports."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modreg.errors import DimensionError, InvalidExpression, InvalidManifest, InvalidUnit
from modreg.spec.equations import (
    EquationSymbol,
    check_equations,
    equation_symbols,
    expression_dimension,
    expression_unit,
    infer_shape,
)
from modreg.spec.expr import parse_expression
from modreg.spec.manifest import Manifest, parse_manifest
from modreg.spec.units import parse_unit

GRAVITY = """\
name: physics/gravity          # lowercase, [a-z0-9][a-z0-9._-]*, optional one "namespace/" prefix
version: 1.0.0                 # MAJOR.MINOR.PATCH, normalised with `packaging`
kind: equation                 # equation | network | hybrid
summary: Newtonian gravitational force between two point masses
inputs:                        # ordered mapping: port name -> port
  m1: {unit: kg, range: [1.0, 10.0]}
  m2: {unit: kg, range: [1.0, 10.0]}
  r:  {unit: m,  range: [1.0, 5.0]}
outputs:
  F:  {unit: N}
equation:                      # kind: equation; one expression per output port
  F: G * m1 * m2 / r**2
constants:
  G: {value: 6.674e-11, unit: m**3/(kg*s**2), trainable: false}
"""

DRAG = """\
name: physics/drag
version: 1.0.0
kind: equation
inputs:
  v:   {unit: m/s, shape: [3]}
  rho: {unit: kg/m**3}
  A:   {unit: m**2}
outputs:
  F:   {unit: N, shape: [3]}
equation:
  F: -0.5*rho*C_d*A*norm(v)*v
constants:
  C_d: {value: 0.47}
"""


def manifest(
    equation: dict[str, str],
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    constants: dict[str, Any] | None = None,
) -> str:
    """YAML text of an equation module; ports given as ``unit`` or ``(unit, shape)``."""

    def port(spec: Any) -> dict[str, Any]:
        unit, shape = spec if isinstance(spec, tuple) else (spec, [])
        return {"unit": unit, "shape": list(shape)}

    data = {
        "name": "test/eq",
        "version": "1.0.0",
        "kind": "equation",
        "inputs": {name: port(spec) for name, spec in inputs.items()},
        "outputs": {name: port(spec) for name, spec in outputs.items()},
        "equation": equation,
        "constants": constants or {},
    }
    return yaml.safe_dump(data, sort_keys=False)


def test_gravity_example_passes() -> None:
    gravity = parse_manifest(GRAVITY)
    check_equations(gravity)  # again, directly
    assert list(equation_symbols(gravity)) == ["m1", "m2", "r", "G"]


def test_drag_example_passes() -> None:
    drag = parse_manifest(DRAG)
    symbols = equation_symbols(drag)
    assert symbols["v"] == EquationSymbol("v", "input", "m/s", (3,))
    assert symbols["C_d"] == EquationSymbol("C_d", "constant", "dimensionless", ())


def test_gravity_with_wrong_power_names_both_units() -> None:
    with pytest.raises(DimensionError) as info:
        parse_manifest(GRAVITY.replace("G * m1 * m2 / r**2", "G*m1*m2/r**3"))
    assert (
        "equation for output 'F': G*m1*m2/r**3 has unit kg/s**2 ([mass] / [time] ** 2) "
        "but port 'F' is declared N ([length] * [mass] / [time] ** 2)"
    ) in str(info.value)


GOOD = {
    "sqrt": (
        {"v": "sqrt(2*g*h)"}, {"g": "m/s**2", "h": "m"}, {"v": "m/s"}, None
    ),
    "float exponent": ({"v": "(2*g*h)**0.5"}, {"g": "m/s**2", "h": "m"}, {"v": "m/s"}, None),
    "cube root": ({"L": "V**(1/3)"}, {"V": "m**3"}, {"L": "m"}, None),
    "float third": ({"L": "V**0.3333333333333333"}, {"V": "m**3"}, {"L": "m"}, None),
    "oscillator": (
        {"x": "A*sin(omega*t + phi)"},
        {"A": "m", "omega": "rad/s", "t": "s", "phi": "rad"},
        {"x": "m"},
        None,
    ),
    "decay": ({"N": "N0*exp(-t/tau)"}, {"N0": "dimensionless", "t": "s"}, {"N": "dimensionless"},
              {"tau": {"value": 2.0, "unit": "s"}}),
    "power": ({"P": "dot(F, v)"}, {"F": ("N", [3]), "v": ("m/s", [3])}, {"P": "W"}, None),
    "abs keeps unit": ({"d": "abs(x - y)"}, {"x": "m", "y": "m"}, {"d": "m"}, None),
    "spelled out": ({"F": "m*a"}, {"m": "kg", "a": "m/s**2"}, {"F": "kg*m/s**2"}, None),
    "list constant": (
        {"F": "-k*x"}, {"x": ("m", [3])}, {"F": ("N", [3])},
        {"k": {"value": [1.0, 2.0, 3.0], "unit": "N/m"}},
    ),
    "dimensionless power": ({"y": "x**z + 2**x"}, {"x": "dimensionless", "z": "dimensionless"},
                            {"y": "dimensionless"}, None),
    "matrix norm": ({"n": "norm(M)"}, {"M": ("m", [2, 3])}, {"n": ("m", [2])}, None),
    "two outputs": (
        {"energy": "m*c**2", "p": "m*c"}, {"m": "kg"}, {"energy": "J", "p": "kg*m/s"},
        {"c": {"value": 299792458.0, "unit": "m/s"}},
    ),
    "number times scalar times vector": ({"y": "2*s*v*pi"}, {"s": "s", "v": ("m/s", [2])},
                                         {"y": ("m", [2])}, None),
    "cancels in sympy": ({"y": "x - x + r"}, {"x": "kg", "r": "m"}, {"y": "m"}, None),
    "radian output": ({"a": "atan(y/x)"}, {"x": "m", "y": "m"}, {"a": "rad"}, None),
}  # fmt: skip


@pytest.mark.parametrize(("equation", "inputs", "outputs", "constants"), GOOD.values(), ids=GOOD)
def test_good_equations(
    equation: dict[str, str], inputs: dict[str, Any], outputs: dict[str, Any], constants: Any
) -> None:
    parsed = parse_manifest(manifest(equation, inputs, outputs, constants))
    assert isinstance(parsed, Manifest)


BAD = {
    "exp of mass": (
        {"F": "exp(m1)"}, {"m1": "kg"}, {"F": "dimensionless"}, None,
        DimensionError, r"exp\(\) needs a dimensionless argument, but m1 has unit kg \(\[mass\]\)",
    ),
    "sum of kg and m": (
        {"y": "m1 + r"}, {"m1": "kg", "r": "m"}, {"y": "kg"}, None,
        DimensionError, r"terms of a sum must have the same unit, but m1 has unit kg .* r has unit",
    ),
    "number plus length": (
        {"y": "r + 1"}, {"r": "m"}, {"y": "m"}, None,
        DimensionError, r"1 has unit dimensionless and r has unit m \(\[length\]\)",
    ),
    "uses an output": (
        {"F": "2*F + m"}, {"m": "kg"}, {"F": "kg"}, None,
        InvalidExpression, r"uses output 'F': an equation may use only the inputs and constants",
    ),
    "unknown name": (
        {"F": "m*g"}, {"m": "kg"}, {"F": "N"}, None,
        InvalidExpression, r"unknown name 'g' at column 3.*available here are: m, pi",
    ),
    "grammar": (
        {"F": "m.__class__"}, {"m": "kg"}, {"F": "kg"}, None,
        InvalidExpression, r"equation for output 'F': invalid expression 'm\.__class__'",
    ),
    "grams for newtons": (
        {"F": "m*a"}, {"m": "g", "a": "m/s**2"}, {"F": "N"}, None,
        DimensionError, r"declared N .*\(1 g\*m/s\*\*2 = 0\.001 N\): multiply m\*a by 0\.001",
    ),
    "km plus m": (
        {"d": "x + y"}, {"x": "km", "y": "m"}, {"d": "m"}, None,
        DimensionError, r"x has unit km .* y has unit m .*1 m = 0\.001 km\): multiply y by 0\.001",
    ),
    "sine of degrees": (
        {"y": "sin(theta)"}, {"theta": "degree"}, {"y": "dimensionless"}, None,
        DimensionError, r"sin\(\) needs a dimensionless argument, but theta has unit deg.*0\.01745",
    ),
    "symbolic exponent of a length": (
        {"y": "r**n"}, {"r": "m", "n": "dimensionless"}, {"y": "m"}, None,
        DimensionError, r"non-numeric exponent needs a dimensionless base .* r has unit m",
    ),
    "wrong output unit": (
        {"F": "m*a"}, {"m": "kg", "a": "m/s**2"}, {"F": "J"}, None,
        DimensionError, r"m\*a has unit kg\*m/s\*\*2 .* but port 'F' is declared J",
    ),
    "shape mismatch": (
        {"y": "v + w"}, {"v": ("m", [3]), "w": ("m", [2])}, {"y": ("m", [3])}, None,
        DimensionError, r"shapes do not match in v \+ w: .* shape \[.\] .* shape \[.\]",
    ),
    "output shape": (
        {"F": "m*a"}, {"m": "kg", "a": ("m/s**2", [3])}, {"F": "N"}, None,
        DimensionError, r"m\*a has shape \[3\] but port 'F' is declared shape \[\]",
    ),
    "norm of scalar": (
        {"y": "norm(x)"}, {"x": "m"}, {"y": "m"}, None,
        DimensionError, r"norm\(\) reduces the last axis .* write abs\(x\)",
    ),
    "dot of unequal shapes": (
        {"y": "dot(a, b)"}, {"a": ("m", [3]), "b": ("m", [2])}, {"y": "m**2"}, None,
        DimensionError, r"dot\(\) needs equal shapes, got \[3\] and \[2\]",
    ),
    "list constant of wrong length": (
        {"F": "k*x"}, {"x": ("m", [3])}, {"F": ("N", [3])},
        {"k": {"value": [1.0, 2.0], "unit": "N/m"}},
        DimensionError, r"shapes do not match",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("equation", "inputs", "outputs", "constants", "error", "message"), BAD.values(), ids=BAD
)
def test_bad_equations(
    equation: dict[str, str],
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    constants: Any,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message) as info:
        parse_manifest(manifest(equation, inputs, outputs, constants))
    assert isinstance(info.value, InvalidManifest)
    assert "equation for output" in str(info.value)
    assert "\n" not in str(info.value)


def test_expression_dimension_matches_pint() -> None:
    expr = parse_expression("G*m1*m2/r**2", ["G", "m1", "m2", "r"])
    units = {"G": "m**3/(kg*s**2)", "m1": "kg", "m2": "kg", "r": "m"}
    assert expression_dimension(expr, units) == parse_unit("N").dimensionality
    assert expression_unit(expr, units) == "kg*m/s**2"


@pytest.mark.parametrize(
    ("text", "unit"),
    [("sqrt(a)", "m"), ("a**1.5", "m**3"), ("norm(v)/t", "m/s"), ("dot(v, v)", "m**2"),
     ("exp(t/t0)", "dimensionless"), ("abs(v)*t", "m*s"), ("pi*a", "m**2"), ("3", "dimensionless")],
)  # fmt: skip
def test_expression_unit(text: str, unit: str) -> None:
    units = {"a": "m**2", "v": "m", "t": "s", "t0": "s"}
    assert expression_unit(parse_expression(text, units), units) == unit


def test_fractional_units() -> None:
    units = {"a": "m"}
    assert expression_unit(parse_expression("sqrt(a)", units), units) == "m**0.5"
    dims = expression_dimension(parse_expression("a**(1/3)*a**(2/3)", units), units)
    assert dims == parse_unit("m").dimensionality


@pytest.mark.parametrize(
    ("text", "same_as"),
    [("m**(4/3)", "m**1.3333333333333333"), ("N*m**(-1/3)", "N/m**0.3333333333333333")],
)
def test_units_take_exact_fraction_exponents(text: str, same_as: str) -> None:
    """Rule: an exponent is a plain number or ``(p/q)`` of integers, q within ±64, and no
    other expression: 4/3 is written exactly, where pint prints 1.33333."""
    assert parse_unit(text) == parse_unit(same_as)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("m**(4/3)**2", "raises an exponent to a power"),
        ("m**(4.5/3)", "fraction of integers"),
        ("m**(x/3)", "fraction of integers"),
        ("m**(200/3)", "beyond ±64"),
    ],
)
def test_unit_fraction_exponents_stay_bounded(text: str, message: str) -> None:
    with pytest.raises(InvalidUnit, match=re.escape(message)):
        parse_unit(text)


def test_decimal_exponents_add_exactly() -> None:
    """A fitted constant's unit (s**1.834/m**1.834) cancels a decimal power (v*abs(v)**0.834):
    a float exponent is the decimal it prints as, not its binary neighbour."""
    units = {"c1": "N*s**1.834/m**1.834", "v": "m/s"}
    expr = parse_expression("c1*v*abs(v)**0.834", units)
    assert expression_dimension(expr, units) == parse_unit("N").dimensionality


@pytest.mark.parametrize(
    ("text", "shape"),
    [("s", ()), ("v", (3,)), ("s*v + v", (3,)), ("norm(v)", ()), ("dot(v, v)*v", (3,)),
     ("norm(M)", (2,)), ("M*s", (2, 3)), ("exp(s)*sin(v)", (3,)), ("2*pi", ()), ("v**2", (3,))],
)  # fmt: skip
def test_infer_shape(text: str, shape: tuple[int, ...]) -> None:
    shapes = {"s": (), "v": (3,), "M": (2, 3)}
    assert infer_shape(parse_expression(text, shapes), shapes) == shape


def test_infer_shape_unknown_name() -> None:
    expr = parse_expression("x*y", ["x", "y"])
    with pytest.raises(InvalidExpression, match="unknown name 'y': the names available are x"):
        infer_shape(expr, {"x": ()})


def test_outputs_are_not_symbols() -> None:
    gravity = parse_manifest(GRAVITY)
    assert "F" not in equation_symbols(gravity)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=3, max_size=3), st.integers(-6, 6))
def test_unit_algebra_adds_exponents(exponents: list[int], half: int) -> None:
    """Rule: the dimension of m**a * L**b * t**(c + h/2) is [mass]**a [length]**b [time]**(...)."""
    a, b, c = exponents
    units = {"m": "kg", "L": "m", "t": "s"}
    exponent_t = Fraction(c) + Fraction(half, 2)
    text = f"m**({a}) * L**({b}) * t**({exponent_t})"
    dims = expression_dimension(parse_expression(text, units), units)
    expected = {"[mass]": a, "[length]": b, "[time]": exponent_t}
    assert dict(dims) == {k: v for k, v in expected.items() if v != 0}


def test_message_quotes_the_equation_text_collapsed() -> None:
    text = manifest({"y": "x +\n  y0"}, {"x": "m", "y0": "s"}, {"y": "m"})
    with pytest.raises(DimensionError) as info:
        parse_manifest(text)
    assert re.search(r"equation for output 'y': the terms of a sum", str(info.value))


# --- equations that cannot be computed are refused at publish ------------------------------


def _one_output(
    equation: str, inputs: str = "  x: {unit: dimensionless, range: [0.5, 2.0]}"
) -> str:
    return (
        "name: t/finite\nversion: 1.0.0\nkind: equation\ninputs:\n"
        f"{inputs}\noutputs:\n  y: {{unit: dimensionless}}\nequation:\n  y: {equation}\n"
    )


@pytest.mark.parametrize(
    ("equation", "message"),
    [
        ("acos(2) + x", r"output 'y': acos\(2\) \+ x is not finite at x=.*narrow the ranges"),
        ("exp(exp(exp(exp(10))))*x", r"output 'y'.*not finite at x="),
        ("log(x - 1)", r"output 'y': log\(x - 1\) is not finite at x="),
        ("asin(x)", r"output 'y': asin\(x\) is not finite at x="),
    ],
)
def test_non_finite_equations_refused(equation: str, message: str) -> None:
    """Rule: an equation must be finite everywhere inside the declared input ranges."""
    with pytest.raises(InvalidManifest, match=message):
        parse_manifest(_one_output(equation))


@pytest.mark.parametrize("equation", ["acos(2)*x", "exp(exp(exp(exp(10))))+x"])
def test_non_finite_everywhere_refused_without_ranges(equation: str) -> None:
    with pytest.raises(InvalidManifest, match=r"output 'y'.*non-finite value.*for any input"):
        parse_manifest(_one_output(equation, "  x: {unit: dimensionless}"))


@pytest.mark.parametrize("equation", ["log(x - 1)", "asin(x)", "1/(x - 1)", "sqrt(x)"])
def test_unranged_inputs_need_only_some_finite_value(equation: str) -> None:
    """Without a range the module does not say where it is used: finite somewhere suffices."""
    parse_manifest(_one_output(equation, "  x: {unit: dimensionless}"))


def test_vector_equation_with_constant_vector_is_checked() -> None:
    text = (
        "name: t/vec\nversion: 1.0.0\nkind: equation\ninputs:\n"
        "  v: {unit: m/s, shape: [3], range: [-1.0, 1.0]}\n  m: {unit: kg, range: [1.0, 2.0]}\n"
        "outputs:\n  p: {unit: kg*m/s, shape: [3]}\nequation:\n  p: m*v + m*norm(v)*u0/vs\n"
        "constants:\n  u0: {value: [0.0, 0.0, 1.0], unit: m/s}\n  vs: {value: 1.0, unit: m/s}\n"
    )
    assert parse_manifest(text).equation == {"p": "m*v + m*norm(v)*u0/vs"}
    with pytest.raises(InvalidManifest, match=r"not finite at m=.*, v=\["):
        parse_manifest(text.replace("m*v + m*norm(v)*u0/vs", "m*v*sqrt(-norm(v)/vs) + m*u0"))


def test_energy_and_current_are_port_names() -> None:
    """Rule: E and I are ordinary names (energy, current); only functions and pi are reserved."""
    text = (
        "name: t/power\nversion: 1.0.0\nkind: equation\ninputs:\n"
        "  E: {unit: J, range: [1.0, 2.0]}\n  I: {unit: A, range: [1.0, 2.0]}\n"
        "  t: {unit: s, range: [1.0, 2.0]}\noutputs:\n  U: {unit: V}\nequation:\n  U: E/(I*t)\n"
    )
    assert parse_manifest(text).equation == {"U": "E/(I*t)"}
    with pytest.raises(InvalidManifest, match="'exp' is reserved"):
        parse_manifest(text.replace("  t: {unit", "  exp: {unit").replace("I*t", "I*exp"))
