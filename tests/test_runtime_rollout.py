"""Rollouts: RK4 against the analytic projectile, semi-implicit Euler, gradients through time."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modreg.errors import InputError
from modreg.module import Module
from modreg.runtime import Hybrid, build, rollout
from tests._runtime_helpers import MODULES, VEC3_A, VEC3_V, uniform_gravity

G = torch.tensor([0.0, 0.0, -9.81], dtype=torch.float64)


def _start(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(batch, 3, dtype=torch.float64), 30 * torch.randn(
        batch, 3, dtype=torch.float64
    )


def test_rk4_matches_the_analytic_projectile(tmp_path: Path) -> None:
    model = build(uniform_gravity(tmp_path / "g")).double()
    x0, v0 = _start()
    dt, steps = 0.01, 200
    traj = rollout(model, {"x": x0, "v": v0}, dt=dt, steps=steps, derivatives={"x": "v", "v": "a"})
    assert traj["x"].shape == (steps + 1, 4, 3)
    t = torch.arange(steps + 1, dtype=torch.float64).reshape(-1, 1, 1) * dt
    exact = x0 + v0 * t + 0.5 * G * t**2
    assert (traj["x"] - exact).abs().max() < 1e-6
    assert (traj["v"] - (v0 + G * t)).abs().max() < 1e-6


def test_semi_implicit_euler_updates_velocity_first(tmp_path: Path) -> None:
    model = build(uniform_gravity(tmp_path / "g")).double()
    x0, v0 = _start()
    dt, n = 0.05, 10
    traj = rollout(
        model, {"x": x0, "v": v0}, dt=dt, steps=n, derivatives={"x": "v", "v": "a"}, method="euler"
    )
    g = torch.tensor([0.0, 0.0, -9.81]).double()  # the module's float32 constant, widened
    expected = x0 + n * dt * v0 + dt**2 * g * n * (n + 1) / 2
    torch.testing.assert_close(traj["x"][-1], expected, rtol=1e-12, atol=1e-10)


def test_gradients_flow_through_the_rollout() -> None:
    drag = Module.from_dir(MODULES / "drag")
    h = Hybrid(inputs={"v": VEC3_V}, outputs={"a": VEC3_A})
    m = h.constant("m", 0.145, unit="kg")
    g = h.constant("g", [0.0, 0.0, -9.81], unit="m/s**2")
    h.output("a", g + h.add("drag", drag, v="v", rho=1.2, trainable=True).F / m)
    net = h.build()
    x0, v0 = (t.float() for t in _start(batch=3))
    traj = rollout(net, {"x": x0, "v": v0}, dt=0.01, steps=50, derivatives={"x": "v", "v": "a"})
    traj["x"][-1].pow(2).sum().backward()
    grad = net.parts["drag"].const_C_d.grad
    assert grad is not None and torch.isfinite(grad) and grad.abs() > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "leapfrog"}, "unknown method 'leapfrog'"),
        ({"dt": -1.0}, "dt=-1.0 must be a positive"),
        ({"derivatives": {"x": "v"}}, "one derivative source per state"),
        ({"derivatives": {"x": "v", "v": "b"}}, "comes from 'b'"),
    ],
)
def test_rollout_refuses_bad_settings(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    model = build(uniform_gravity(tmp_path / "g"))
    settings: dict[str, object] = {
        "dt": 0.1,
        "steps": 2,
        "derivatives": {"x": "v", "v": "a"},
    } | kwargs
    with pytest.raises(InputError, match=message):
        rollout(model, {"x": torch.zeros(1, 3), "v": torch.zeros(1, 3)}, **settings)  # type: ignore[arg-type]


def test_model_inputs_must_be_states_or_given() -> None:
    drag = build(Module.from_dir(MODULES / "drag"))
    state = {"v": torch.ones(2, 3)}
    with pytest.raises(InputError, match="\\['rho'\\] are neither states nor given"):
        rollout(drag, state, dt=0.1, steps=1, derivatives={"v": "F"})
    traj = rollout(
        drag, state, dt=0.1, steps=1, derivatives={"v": "F"}, inputs={"rho": torch.ones(2)}
    )
    assert traj["v"].shape == (2, 2, 3)
