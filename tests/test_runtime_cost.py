"""Cost: parameters, FLOPs per sample (same counting rule for equations and networks), latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


# -- energy (codecarbon, offline) ------------------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network (any connect raises) and an empty working directory to watch for files."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network call during an offline energy measurement: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_energy_is_an_offline_labelled_estimate_per_million(offline: Path) -> None:
    pytest.importorskip("codecarbon")
    cost = modreg.cost(Module.from_dir(MODULES / "drag"), batch=256, energy=True, energy_s=0.2)
    found = cost.energy_estimate
    assert found is not None and found.calls >= 1 and found.joules > 0
    assert cost.energy == pytest.approx(found.joules / (found.calls * 256) * 1e6)
    assert cost.co2 is not None and cost.co2 > 0
    assert cost.energy_method is not None
    assert cost.energy_method.startswith("estimate: codecarbon")
    assert "CPU power" in cost.energy_method and "g/kWh" in cost.energy_method
    assert "per 1M predictions (estimate)" in str(cost)
    assert cost.to_json()["energy_method"] == cost.energy_method
    assert list(offline.iterdir()) == []  # codecarbon wrote nothing (no emissions.csv, no lock)


def test_energy_is_measured_when_first_read_and_never_when_refused(offline: Path) -> None:
    pytest.importorskip("codecarbon")
    net = modreg.build(Module.from_dir(MODULES / "drag"))
    lazy = modreg.cost(net, batch=64, latency=False, energy_s=0.1)
    assert "energy_method" not in lazy.to_json()  # not measured yet
    assert lazy.energy is not None and lazy.energy > 0
    assert "energy_method" in lazy.to_json()
    refused = modreg.cost(net, batch=64, latency=False, energy=False)
    assert refused.energy is None and refused.co2 is None and refused.energy_method is None


def test_a_given_grid_intensity_turns_energy_into_co2(offline: Path) -> None:
    pytest.importorskip("codecarbon")
    net = modreg.build(Module.from_dir(MODULES / "drag"))
    cost = modreg.cost(net, batch=64, latency=False, energy=True, energy_s=0.1, grid_g_per_kwh=500)
    assert cost.energy is not None and cost.co2 is not None
    assert cost.co2 == pytest.approx(cost.energy / 3.6e6 * 500)
    assert "grid 500 g/kWh" in (cost.energy_method or "")


def test_without_codecarbon_energy_is_absent_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    import modreg._energy

    monkeypatch.setattr(modreg._energy, "available", lambda: False)
    cost = modreg.cost(Module.from_dir(MODULES / "drag"), batch=64, latency=False, energy=True)
    assert cost.energy is None and cost.co2 is None and cost.energy_method is None
    assert "J" not in str(cost) and "energy_j_per_million" not in cost.to_json()
    with modreg._energy.track() as meter:
        pass
    assert meter.estimate is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"energy_s": 0}, "energy_s=0 must be a positive"),
        ({"country": "XYZ"}, "no energy mix for country 'XYZ'"),
        ({"grid_g_per_kwh": -1.0}, "grid_g_per_kwh=-1.0 must be >= 0"),
    ],
)
def test_bad_energy_options_are_input_errors(options: dict[str, Any], message: str) -> None:
    pytest.importorskip("codecarbon")
    net = modreg.build(Module.from_dir(MODULES / "drag"))
    with pytest.raises(InputError, match=message):
        modreg.cost(net, batch=8, latency=False, energy=True, **({"energy_s": 0.1} | options))
