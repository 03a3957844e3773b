"""The grammar's one table of functions: parser, unit check, printer, distillation agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from modreg.distill._expr import evaluate
from modreg.distill._validate import RESERVED
from modreg.errors import DimensionError, InvalidExpression, InvalidManifest
from modreg.runtime import Block
from modreg.runtime._codegen import _ELEMENTWISE, _TORCH_CALLS, Operand, Printer
from modreg.spec import manifest
from modreg.spec._finite import check_finite
from modreg.spec.equations import DIMENSIONLESS_FUNCTIONS, expression_unit
from modreg.spec.expr import FUNCTIONS, format_expression, parse_expression
from modreg.spec.grammar import FUNCTION_TABLE, GRAMMAR, RESERVED_NAMES

ELEMENTWISE = [f for f in GRAMMAR if f.elementwise]


def _call(name: str, arity: int, arg: str = "x") -> str:
    return f"{name}({', '.join([arg] * arity)})"


def test_reserved_names_are_the_functions_and_pi() -> None:
    assert frozenset(FUNCTION_TABLE) | {"pi"} == RESERVED_NAMES
    assert frozenset(FUNCTION_TABLE) == FUNCTIONS
    assert manifest.RESERVED_NAMES == RESERVED_NAMES == RESERVED
    assert not {"E", "I", "S", "N", "oo", "nan", "inf"} & RESERVED_NAMES


@pytest.mark.parametrize("entry", GRAMMAR, ids=lambda f: f.name)
def test_parser_accepts_each_function_with_its_arity(entry) -> None:  # type: ignore[no-untyped-def]
    expr = parse_expression(_call(entry.name, entry.arity), ["x"])
    assert parse_expression(format_expression(expr), ["x"]) == expr
    with pytest.raises(Exception, match=f"{entry.name}\\(\\) takes {entry.arity} argument"):
        parse_expression(_call(entry.name, entry.arity + 1), ["x"])


@pytest.mark.parametrize("entry", GRAMMAR, ids=lambda f: f.name)
def test_unit_check_follows_dimensionless_column(entry) -> None:  # type: ignore[no-untyped-def]
    expr = parse_expression(_call(entry.name, entry.arity), ["x"])
    if entry.name in ("norm", "dot"):
        return  # vector functions: their unit rules are tested with vector shapes
    if entry.dimensionless:
        assert expr.func in DIMENSIONLESS_FUNCTIONS
        with pytest.raises(DimensionError, match="dimensionless argument"):
            expression_unit(expr, {"x": "m"})
        assert expression_unit(expr, {"x": "dimensionless"}) == "dimensionless"
    else:
        assert expression_unit(expr, {"x": "m"}) in ("m", "m**0.5")


@pytest.mark.parametrize("entry", ELEMENTWISE, ids=lambda f: f.name)
def test_printer_and_distillation_compute_the_same_function(entry) -> None:  # type: ignore[no-untyped-def]
    """The torch call of the printer and the numpy call of distillation agree in the domain."""
    expr = parse_expression(_call(entry.name, 1), ["x"])
    assert _ELEMENTWISE[expr.func] == entry.torch
    assert entry.torch.removeprefix("torch.") in _TORCH_CALLS
    low, high = (max(b, -3.0) if math.isinf(b) else b for b in entry.domain)
    high = min(high, 3.0)
    points = np.linspace(low, high, 9)[1:-1]
    numpy_values = evaluate(expr, {"x": points}, len(points))
    torch_fn = _torch_function(entry.torch)
    argument = points / math.pi if entry.per_pi else points  # torch.sinc is the normalised one
    torch_values = torch_fn(torch.tensor(argument, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(numpy_values, torch_values, rtol=1e-12)
    reference = np.array([float(expr.subs(sp.Symbol("x", real=True), p)) for p in points])
    np.testing.assert_allclose(numpy_values, reference, rtol=1e-12)


def _torch_function(dotted: str):  # type: ignore[no-untyped-def]
    obj = torch
    for part in dotted.removeprefix("torch.").split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(
    "entry", [f for f in GRAMMAR if math.isfinite(f.domain[0])], ids=lambda f: f.name
)
def test_domain_bounds_what_is_finite(entry) -> None:  # type: ignore[no-untyped-def]
    expr = parse_expression(_call(entry.name, 1), ["x"])
    below = np.array([entry.domain[0] - 0.5])
    assert not np.isfinite(evaluate(expr, {"x": below}, 1)).all()


def test_sinc_is_sin_x_over_x_and_one_at_zero_everywhere() -> None:
    """Rule: ``sinc(x)`` is the unnormalised sin(x)/x, 1 at 0, in sympy, numpy and torch."""
    expr = parse_expression("sinc(x)**2", ["x"])
    points = np.array([0.0, 0.5, math.pi, -2.0])
    want = np.array([1.0, (math.sin(0.5) / 0.5) ** 2, 0.0, (math.sin(2.0) / 2.0) ** 2])
    np.testing.assert_allclose(evaluate(expr, {"x": points}, 4), want, atol=1e-15)
    assert parse_expression("sinc(0)", []) == 1
    printer = Printer({"x": Operand("p_x", (), batched=True)})
    printer.value(expr)
    assert printer.lines[0] == "t0 = torch.sinc(p_x / 3.141592653589793)"
    got = torch.sinc(torch.tensor(points, dtype=torch.float64) / math.pi) ** 2
    np.testing.assert_allclose(got.numpy(), want, atol=1e-15)


def test_publish_knows_sinc_is_finite_where_sin_x_over_x_is_not() -> None:
    """A range around 0 (its centre is probed): sin(x)/x is refused, sinc(x) is not."""
    ranges: dict[str, tuple[float, float] | None] = {"x": (-1.0, 1.0)}
    check_finite(parse_expression("sinc(x)**2", ["x"]), ranges, {}, {"x": ()}, "sinc(x)**2")
    text = "sin(x)**2/x**2"
    with pytest.raises(InvalidExpression, match=r"not finite at x=0\.0"):
        check_finite(parse_expression(text, ["x"]), ranges, {}, {"x": ()}, text)


@pytest.mark.parametrize("name", ["E", "I", "S", "N", "beta"])
def test_blocks_accept_physics_names(name: str) -> None:
    block = Block.mlp({name: "J"}, {"P": "W"}, hidden=[4])
    assert block.input_names == [name]


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ({"exp": "m"}, {"y": "m"}, "'exp' is reserved by the equation grammar"),
        ({"x": "m"}, {"pi": "m"}, "'pi' is reserved"),
        ({"lambda": "m"}, {"y": "m"}, "invalid port name 'lambda'"),
        ({"x": "m"}, {"x": "m"}, "'x' is both an input and an output"),
    ],
)
def test_blocks_refuse_bad_names_when_created(inputs, outputs, message) -> None:  # type: ignore[no-untyped-def]
    """Rule: a name save would refuse is refused before any training (mlp and resmlp)."""
    with pytest.raises(InvalidManifest, match=message):
        Block.mlp(inputs, outputs, hidden=[4])
    with pytest.raises(InvalidManifest, match=message):
        Block.resmlp(inputs, outputs, width=4, blocks=1)


def test_normalize_outputs_from_data_keeps_input_ranges() -> None:
    block = Block.mlp({"x": {"unit": "m", "range": [2.0, 6.0]}}, {"y": "m"}, normalize=True)
    y = torch.linspace(100.0, 300.0, 50).reshape(50, 1)
    block.fit_normalization(None, {"y": y})
    assert block.in_shift.tolist() == [4.0] and block.in_scale.tolist() == [2.0]
    assert block.out_shift.item() == pytest.approx(200.0)
    assert block.out_scale.item() == pytest.approx(float(y.std()))
    block.fit_normalization({"x": torch.full((10, 1), 3.0)}, None)
    assert block.in_shift.tolist() == [3.0]
    assert block.out_shift.item() == pytest.approx(200.0)
