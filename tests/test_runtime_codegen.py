"""Equation -> torch: generated code returns what sympy evaluates, for every grammar function."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sympy as sp
import torch

import modreg
from modreg.errors import InputError, InvalidExpression, InvalidWeights
from modreg.runtime._codegen import verify_source
from modreg.runtime._equation import build_equation
from modreg.spec.expr import parse_expression
from modreg.spec.manifest import load_manifest
from tests._runtime_helpers import MODULES, equation

# (expression in x, y, z; domain): every scalar function of the grammar, and the operators
# (norm and dot take vectors: VECTOR_CASES).
SCALAR_CASES = [
    ("sqrt(x)", (0.1, 4.0)),
    ("exp(x)", (-3.0, 3.0)),
    ("log(x)", (0.1, 9.0)),
    ("sin(x)", (-3.0, 3.0)),
    ("cos(x)", (-3.0, 3.0)),
    ("tan(x)", (-1.2, 1.2)),
    ("asin(x)", (-0.95, 0.95)),
    ("acos(x)", (-0.95, 0.95)),
    ("atan(x)", (-5.0, 5.0)),
    ("sinh(x)", (-3.0, 3.0)),
    ("cosh(x)", (-3.0, 3.0)),
    ("tanh(x)", (-3.0, 3.0)),
    ("abs(x)", (-3.0, 3.0)),
    ("2.5*x**3 - x/y + 1/2", (0.5, 2.0)),
    ("x**y + 2**x - y**-2 + x**0.5 / sqrt(y)", (0.5, 2.0)),
    ("-(x - y)**2 / (1 + x**2) + pi*exp(1)", (-2.0, 2.0)),
    ("k*x + k**2/y", (0.5, 2.0)),
]
VECTOR_CASES = [
    "norm(v) * v",
    "x * v + w",
    "dot(v, w) * w / (1 + norm(v))",
    "v / x - 2*w",
    "abs(v) + exp(-x) * w",
    "c * x * v",
    "(norm(c) + dot(c, v)) * v",
]


def _scalar_module(tmp_path: Path, text: str, domain: tuple[float, float]) -> modreg.Module:
    port = {"range": [domain[0], domain[1]]}
    return equation(
        tmp_path / "eq", "test/scalar", {"x": port, "y": port, "z": port}, {"out": {}},
        {"out": text}, {"k": {"value": 1.75, "trainable": True}},
    )  # fmt: skip


def _reference(text: str, names: list[str], point: dict[str, float]) -> float:
    expr = parse_expression(text, names)
    subs = {sp.Symbol(n, real=True): sp.Float(v, 30) for n, v in point.items()}
    return float(expr.subs(subs).evalf(30))


@pytest.mark.parametrize(("text", "domain"), SCALAR_CASES)
def test_scalar_codegen_matches_sympy(
    tmp_path: Path, text: str, domain: tuple[float, float]
) -> None:
    module = build_equation(_scalar_module(tmp_path, text, domain).manifest).double()
    torch.manual_seed(0)
    low, high = domain
    inputs = {n: low + (high - low) * torch.rand(16, dtype=torch.float64) for n in "xyz"}
    got = module(inputs)["out"].detach()
    for i in range(16):
        point = {n: float(inputs[n][i]) for n in "xyz"} | {"k": 1.75}
        expected = _reference(text, ["x", "y", "z", "k"], point)
        assert math.isclose(float(got[i]), expected, rel_tol=1e-12, abs_tol=1e-12), (text, point)


def _vector_reference(text: str, point: dict[str, list[float] | float]) -> list[float]:
    """Evaluate component-wise with sympy: vector symbols become 3 scalar symbols."""
    names = ["x", "v", "w", "c"]
    expr = parse_expression(text, names)
    result = []
    for i in range(3):

        def component(e: sp.Basic, i: int = i) -> sp.Basic:
            comps = {n: sp.Matrix([sp.Float(t, 30) for t in point[n]]) for n in ("v", "w", "c")}
            return _vec(e, comps, i, sp.Float(point["x"], 30))  # type: ignore[arg-type]

        result.append(float(sp.N(component(expr), 30)))
    return result


def _vec(e: sp.Basic, comps: dict[str, sp.Matrix], i: int, x: sp.Float) -> sp.Basic:
    """Value of component ``i`` of ``e`` (scalars are the same in every component)."""
    name = type(e).__name__
    if isinstance(e, sp.Symbol):
        return x if e.name == "x" else comps[e.name][i]
    if name == "Norm":
        vec = [_vec(e.args[0], comps, j, x) for j in range(3)]
        return sp.sqrt(sum(c**2 for c in vec))
    if name == "Dot":
        a, b = e.args
        return sum(_vec(a, comps, j, x) * _vec(b, comps, j, x) for j in range(3))
    if not e.args:
        return e
    return e.func(*(_vec(arg, comps, i, x) for arg in e.args))


@pytest.mark.parametrize("text", VECTOR_CASES)
def test_vector_codegen_broadcasts_like_sympy(tmp_path: Path, text: str) -> None:
    vec = {"shape": [3]}
    module = equation(
        tmp_path / "eq", "test/vector", {"x": {"range": [0.5, 2.0]}, "v": vec, "w": vec},
        {"out": vec}, {"out": text}, {"c": {"value": [0.5, -1.0, 2.0]}},
    )  # fmt: skip
    built = build_equation(module.manifest).double()
    torch.manual_seed(1)
    inputs = {"x": 0.5 + torch.rand(8, dtype=torch.float64)}
    inputs |= {
        "v": torch.randn(8, 3, dtype=torch.float64),
        "w": torch.randn(8, 3, dtype=torch.float64),
    }
    got = built(inputs)["out"].detach()
    assert got.shape == (8, 3)
    for b in range(8):
        point = {
            "x": float(inputs["x"][b]),
            "v": inputs["v"][b].tolist(),
            "w": inputs["w"][b].tolist(),
        }
        expected = _vector_reference(text, point | {"c": [0.5, -1.0, 2.0]})
        assert got[b].tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_drag_source_folds_numbers_and_keeps_constants_as_tensors() -> None:
    module = build_equation(load_manifest(MODULES / "drag"))
    assert "(-0.5)" in module.source
    assert "torch.linalg.vector_norm(p_v, dim=-1)" in module.source
    assert dict(module.named_parameters()).keys() == {"const_C_d"}  # trainable: true
    assert dict(module.named_buffers()).keys() == {"const_A"}


def test_equation_is_differentiable_and_scriptable(tmp_path: Path) -> None:
    from modreg.runtime._export import script

    module = build_equation(load_manifest(MODULES / "drag"))
    v = torch.randn(5, 3, requires_grad=True)
    out = module({"v": v, "rho": torch.full((5,), 1.2)})["F"]
    out.sum().backward()
    assert v.grad is not None and module.const_C_d.grad is not None
    scripted = script(module)
    inputs = {"v": v.detach(), "rho": torch.full((5,), 1.2)}
    assert torch.equal(scripted(inputs)["F"], module(inputs)["F"])


def test_constant_only_output_is_broadcast_to_the_batch(tmp_path: Path) -> None:
    module = equation(
        tmp_path / "eq", "test/const", {"x": {}}, {"y": {}, "z": {}}, {"y": "k * 2", "z": "3"},
        {"k": {"value": 1.5}},
    )  # fmt: skip
    out = build_equation(module.manifest)({"x": torch.zeros(4)})
    assert out["y"].tolist() == [3.0] * 4 and out["z"].tolist() == [3.0] * 4


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"v": torch.zeros(4, 3)}, "input port 'rho' is missing: pass a tensor of shape (batch,)"),
        (
            {"v": torch.zeros(4, 2), "rho": torch.ones(4)},
            "'v' has shape [4, 2], expected (batch, 3)",
        ),
        ({"v": torch.zeros(4, 3), "rho": torch.ones(5)}, "'rho' has batch size 5"),
        ({"v": torch.full((4, 3), math.nan), "rho": torch.ones(4)}, "'v' holds NaN or Inf"),
        ({"v": torch.zeros(4, 3), "rho": torch.full((4,), math.inf)}, "'rho' holds NaN or Inf"),
    ],
)
def test_bad_inputs_name_the_port(inputs: dict[str, torch.Tensor], message: str) -> None:
    module = build_equation(load_manifest(MODULES / "drag"))
    with pytest.raises(
        InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        module(inputs)


def test_input_check_can_be_switched_off() -> None:
    module = build_equation(load_manifest(MODULES / "drag"))
    module.check_inputs = False
    out = module({"v": torch.full((2, 3), math.nan), "rho": torch.ones(2)})["F"]
    assert torch.isnan(out).all()


def test_frozen_constant_cannot_be_loaded() -> None:
    module = build_equation(load_manifest(MODULES / "drag"))
    with pytest.raises(InvalidWeights, match="constant 'A' is frozen"):
        module.load_trainable_state({"const_A": torch.tensor(1.0)})
    module.load_trainable_state({"const_C_d": torch.tensor(0.5)})
    assert module.const_C_d.item() == 0.5
    with pytest.raises(InvalidWeights, match="float64"):
        module.load_trainable_state({"const_C_d": torch.tensor(0.5, dtype=torch.float64)})


@pytest.mark.parametrize(
    "source",
    [
        "import os\n",
        "def forward(self, inputs):\n    return __import__('os')\n",
        "def forward(self, inputs):\n    return torch.load('x')\n",
        "def forward(self, inputs):\n    return self.__class__\n",
        "def forward(self, inputs):\n    return inputs.__getitem__\n",
        "def forward(self, inputs):\n    return open('f')\n",
    ],
)
def test_generated_code_guard_refuses_anything_but_tensor_arithmetic(source: str) -> None:
    with pytest.raises(InvalidExpression, match="generated code refused"):
        verify_source(source)
