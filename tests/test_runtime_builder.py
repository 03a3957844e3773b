"""The hybrid builder: wiring, sums of terms, training controls, build-time checks, replace."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import modreg
from modreg.errors import GraphError, InterfaceMismatch
from modreg.module import Module
from modreg.runtime import Block, Hybrid, build, replace
from modreg.runtime._terms import Term
from tests._runtime_helpers import MODULES, VEC3_A, VEC3_V, equation

V = {"unit": "m/s", "shape": [3]}


@pytest.fixture
def drag() -> Module:
    return Module.from_dir(MODULES / "drag")


def ball(drag: Module, *, residual: Block | None = None) -> Hybrid:
    """a = g + drag.F / m (+ residual.a): the showcase's acceleration."""
    h = Hybrid(inputs={"v": VEC3_V}, outputs={"a": VEC3_A}, name="test/ball")
    m = h.constant("m", 0.145, unit="kg")
    g = h.constant("g", [0.0, 0.0, -9.81], unit="m/s**2")
    d = h.add("drag", drag, v="v", rho=1.2)
    total = g + d.F / m
    if residual is not None:
        total = total + h.add("residual", residual, v="v").a
    h.output("a", total)
    return h


def test_hybrid_sums_terms_like_the_hand_written_formula(drag: Module) -> None:
    net = ball(drag).build()
    v = torch.randn(6, 3) * 30
    a = net({"v": v})["a"]
    speed = v.norm(dim=-1, keepdim=True)
    expected = torch.tensor([0.0, 0.0, -9.81]) - 0.5 * 1.2 * 0.35 * 0.004185 * speed * v / 0.145
    torch.testing.assert_close(a, expected, rtol=1e-5, atol=1e-6)
    assert "self.parts['drag']" in net.source


def test_gradients_reach_only_trainable_parts(drag: Module) -> None:
    torch.manual_seed(0)
    block = Block.mlp({"v": V}, {"a": VEC3_A}, hidden=[8])
    net = ball(drag, residual=block).build()
    assert not net.is_trainable("drag") and net.is_trainable("residual")
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    net({"v": torch.randn(4, 3)})["a"].pow(2).sum().backward()
    optimizer.step()
    assert net.parts["drag"].const_C_d.grad is None  # frozen equation (trainable constant)
    assert all(p.grad is not None for p in block.parameters())
    net.zero_grad(set_to_none=True)
    net.freeze("residual").unfreeze("drag")
    net({"v": torch.randn(4, 3)})["a"].sum().backward()
    assert net.parts["drag"].const_C_d.grad is not None
    assert all(p.grad is None for p in block.parameters())


def test_learnable_graph_constant(drag: Module) -> None:
    h = Hybrid(inputs={"v": VEC3_V}, outputs={"a": VEC3_A})
    m = h.constant("m", 0.145, unit="kg", trainable=True)
    h.output("a", h.add("drag", drag, v="v", rho=1.2).F / m)
    net = h.build()
    net({"v": torch.randn(3, 3)})["a"].sum().backward()
    assert net.const_m.grad is not None
    with pytest.raises(GraphError, match="no part or trainable constant 'x'"):
        net.freeze("x")


def test_compatible_units_are_converted_at_the_joint(tmp_path: Path) -> None:
    # identity in metres, fed a length in kilometres and read back in millimetres
    ident = equation(
        tmp_path / "id", "test/ident", {"x": {"unit": "m"}}, {"y": {"unit": "m"}}, {"y": "x"}
    )
    h = Hybrid(inputs={"d": {"unit": "km"}}, outputs={"mm": {"unit": "mm"}, "sum": {"unit": "m"}})
    part = h.add("id", ident, x="d")
    h.output("mm", part.y)
    h.output("sum", part.y + h.input("d"))  # m + km: both scaled to base units
    net = h.build()
    out = net({"d": torch.tensor([1.0, 2.5])})
    assert out["mm"].tolist() == [1e6, 2.5e6]
    assert out["sum"].tolist() == [2000.0, 5000.0]
    assert "1000.0" in net.source


def _errors(drag: Module, tmp_path: Path) -> dict[str, tuple[type[Exception], str, Hybrid]]:
    cases: dict[str, tuple[type[Exception], str, Hybrid]] = {}

    h = Hybrid(inputs={"v": V}, outputs={"a": VEC3_A})
    h.add("drag", drag, v="v")
    h.output("a", "drag.F")
    cases["unconnected"] = (GraphError, "input 'rho' .* of part 'drag' is not connected", h)

    h = Hybrid(inputs={"v": V}, outputs={"F": {"unit": "N", "shape": [3]}})
    h.add("drag", drag, v="v", rho=1.2)
    h.output("F", "drag.G")
    cases["unknown output port"] = (GraphError, "part 'drag' has no output port 'G'", h)

    h = Hybrid(inputs={"v": V}, outputs={"F": {"unit": "N", "shape": [3]}})
    h.add("drag", drag, v="v", rho=1.2)
    h.output("F", "drag.F + ")
    cases["bad expression"] = (GraphError, "wire into 'F'", h)

    h = Hybrid(inputs={"v": V}, outputs={"F": {"unit": "N", "shape": [3]}})
    h.add("drag", drag, v="v", rho=1.2)
    cases["missing output"] = (GraphError, "missing \\['F'\\]", h)

    h = Hybrid(inputs={"v": V}, outputs={"a": VEC3_A})
    first = h.add("one", Block.mlp({"v": V, "b": VEC3_A}, {"a": VEC3_A}, hidden=[2]), v="v")
    second = h.add("two", Block.mlp({"a": VEC3_A}, {"b": VEC3_A}, hidden=[2]), a=first.a)
    h.wire("one.b", second.b)
    h.output("a", second.b)
    cases["cycle"] = (GraphError, "cycle: one -> two -> one", h)

    h = Hybrid(inputs={"s": {"unit": "m/s"}}, outputs={"F": {"unit": "N", "shape": [3]}})
    h.output("F", h.add("drag", drag, v="s", rho=1.2).F)
    cases["shape"] = (
        InterfaceMismatch,
        "shape mismatch at 'drag.v'.* \\[\\] but drag.v expects \\[3\\]",
        h,
    )

    h = Hybrid(inputs={"v": V | {"dtype": "float64"}}, outputs={"F": {"unit": "N", "shape": [3]}})
    h.output("F", h.add("drag", drag, v="v", rho=1.2).F)
    cases["dtype"] = (InterfaceMismatch, "dtype mismatch at 'drag.v': v is float64", h)

    h = Hybrid(
        inputs={"p": {"unit": "kg*m/s", "shape": [3]}}, outputs={"F": {"unit": "N", "shape": [3]}}
    )
    h.output("F", h.add("drag", drag, v="p", rho=1.2).F)
    cases["units"] = (InterfaceMismatch, "cannot wire p \\(kg\\*m/s\\) into drag.v \\(m/s\\)", h)

    h = Hybrid(inputs={"v": V}, outputs={"a": VEC3_A})
    h.output("a", h.add("drag", drag, v="v", rho=1.2).F)
    cases["output units"] = (
        InterfaceMismatch,
        "cannot wire drag.F \\(N\\) into a \\(m/s\\*\\*2\\)",
        h,
    )

    h = Hybrid(inputs={"v": V}, outputs={"a": VEC3_A})
    h.output("a", h.add("drag", drag, v="v", rho=1.2).F + h.input("v"))
    cases["sum units"] = (InterfaceMismatch, "terms of a sum must have the same unit", h)
    return cases


CASES = [
    "unconnected", "unknown output port", "bad expression", "missing output", "cycle", "shape",
    "dtype", "units", "output units", "sum units",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_build_time_errors(drag: Module, tmp_path: Path, case: str) -> None:
    error, message, hybrid = _errors(drag, tmp_path)[case]
    with pytest.raises(error, match=message):
        hybrid.build()


def test_wiring_errors_while_editing(drag: Module) -> None:
    h = Hybrid(inputs={"v": V}, outputs={"a": VEC3_A})
    with pytest.raises(GraphError, match="no input port 'vv'; its inputs are \\['v', 'rho'\\]"):
        h.add("drag", drag, vv="v")
    with pytest.raises(GraphError, match="no part 'nope'"):
        h.wire("nope.v", "v")
    with pytest.raises(GraphError, match="no output 'b'"):
        h.output("b", "v")
    with pytest.raises(AttributeError, match="no output port 'G'"):
        _ = h.part("drag").G


def test_terms_print_in_the_grammar() -> None:
    a, b, c = Term("a"), Term("b"), Term("c")
    assert str(a + b * c) == "a + b*c"
    assert str((a + b) * c) == "(a + b)*c"
    assert str(a - (b - c)) == "a - (b - c)"
    assert str(a / (b * c)) == "a/(b*c)"
    assert str(-((a + b) ** 2)) == "-(a + b)**2"
    assert str(2 * a - 0.5) == "2*a - 0.5"


def test_replace_network_by_equation(tmp_path: Path, drag: Module) -> None:
    mlp = Module.from_dir(MODULES / "drag-mlp")
    h = Hybrid(inputs={"v": VEC3_V}, outputs={"F": {"unit": "N", "shape": [3]}})
    h.output("F", h.add("drag", mlp, v="v").F)
    net = h.build()
    with pytest.raises(
        InterfaceMismatch, match="input 'rho' \\(kg/m\\*\\*3\\) is not wired: pass rho="
    ):
        replace(net, "drag", drag)
    swapped = replace(net, "drag", drag, rho=1.2)
    v = torch.randn(4, 3) * 20
    expected = build(drag)({"v": v, "rho": torch.full((4,), 1.2)})["F"]
    assert torch.equal(swapped({"v": v})["F"], expected)
    back = replace(swapped.hybrid, "drag", mlp)
    assert set(back.wires) == {"drag.v"}


def test_replace_refuses_another_interface(tmp_path: Path, drag: Module) -> None:
    gravity = Module.from_dir(MODULES / "gravity")
    net = ball(drag).build()
    with pytest.raises(InterfaceMismatch) as info:
        modreg.replace(net, "drag", gravity)
    message = str(info.value)
    assert "output 'F' has shape [3] but the new module's has []" in message
    assert "input 'm1' (kg) is not wired" in message
    with pytest.raises(GraphError, match="no part 'nope'"):
        modreg.replace(net, "nope", gravity)


def test_fresh_block_must_be_saved_before_the_hybrid(tmp_path: Path, drag: Module) -> None:
    net = ball(drag, residual=Block.mlp({"v": V}, {"a": VEC3_A}, hidden=[4])).build()
    with pytest.raises(GraphError, match="part 'residual' is a fresh block"):
        net.save(tmp_path / "ball")
