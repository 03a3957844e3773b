"""Cost: parameters, FLOPs per sample (same counting rule for equations and networks), latency."""

from __future__ import annotations

import pytest

import modreg
from modreg.cli._render import _cost_line
from modreg.errors import InputError
from modreg.module import Module
from modreg.runtime import Block, Hybrid
from modreg.spec.manifest import load_manifest
from tests._runtime_helpers import MODULES, VEC3_A, VEC3_V


def test_equation_costs_a_handful_of_flops() -> None:
    cost = modreg.cost(Module.from_dir(MODULES / "drag"), batch=256)
    assert cost.parameters == 1 and cost.trainable_parameters == 1
    assert 5 <= cost.flops_per_sample <= 30
    assert cost.latency_s is not None and cost.latency_s > 0 and cost.throughput
    assert "FLOP/sample" in str(cost)


def test_mlp_flops_follow_the_matmul_formula() -> None:
    block = Block.mlp({"v": {"shape": [3]}}, {"F": {"shape": [3]}}, hidden=[128, 128, 128])
    cost = modreg.cost(block, batch=64, latency=False)
    macs = 3 * 128 + 128 * 128 * 2 + 128 * 3
    assert 2 * macs <= cost.flops_per_sample <= 2 * macs + 4 * 128 * 3  # + tanh and bias adds
    assert cost.parameters == macs + 3 * 128 + 3 and cost.latency_s is None


def test_hybrid_cost_is_reported_per_part() -> None:
    h = Hybrid(inputs={"v": VEC3_V}, outputs={"a": VEC3_A})
    m = h.constant("m", 0.145, unit="kg")
    h.output("a", h.add("drag", Module.from_dir(MODULES / "drag"), v="v", rho=1.2).F / m)
    cost = modreg.cost(h.build(), batch=32, latency=False)
    assert set(cost.parts) == {"drag"}
    assert cost.flops_per_sample >= cost.parts["drag"].flops_per_sample
    assert cost.to_json()["parts"]["drag"]["parameters"] == 1


def test_show_prints_a_cost_line() -> None:
    line = _cost_line(load_manifest(MODULES / "drag-mlp"))
    assert line is not None and line.startswith("cost: 1,283 parameters")


def test_bad_batch_is_refused() -> None:
    with pytest.raises(InputError, match="batch=0"):
        modreg.cost(Module.from_dir(MODULES / "drag"), batch=0)
