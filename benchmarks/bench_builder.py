"""Builder benchmarks: an equation against the network it distils, and the builder's overhead.

Run: ``python benchmarks/bench_builder.py`` (prints figures; ratios are measured in one run).

1. Drag equation (``modules/drag``) against an MLP (3 hidden layers x 128, tanh) trained here
   to fit the same law: FLOPs per sample (counted over executed aten ops, see modreg.cost),
   CPU throughput at batch 65,536, and the MLP's fit error. Targets: >= 1000x, >= 100x.
2. Builder overhead: the hybrid ``a = g + drag.F / m`` built by modreg against the same
   computation hand-written as one ``nn.Module``, time per forward at batch 4,096.
   Target: <= 1.2x.

Input checks (NaN/shape) are a documented switch; figures are given with them off (the
hand-written and MLP baselines do not check) and, for the hybrid, on as well.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import modreg  # noqa: E402
from modreg.module import Module  # noqa: E402
from modreg.runtime import Block, Hybrid, build  # noqa: E402

RHO, C_D, AREA, MASS = 1.2, 0.35, 0.004185, 0.145
V_RANGE = 60.0


def per_call(fn: Callable[[], object], *, calls: int, repeats: int = 7) -> float:
    """Seconds per call: the minimum over ``repeats`` of the mean over ``calls`` (warm)."""
    with torch.no_grad():
        for _ in range(3):
            fn()
        means = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            means.append((time.perf_counter() - start) / calls)
    return min(means)


def drag_law(v: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    speed: torch.Tensor = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    return -0.5 * rho.unsqueeze(-1) * C_D * AREA * speed * v


def sample(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    v = (torch.rand(batch, 3, generator=generator) * 2 - 1) * V_RANGE
    rho = 1.0 + 0.3 * torch.rand(batch, generator=generator)
    return {"v": v, "rho": rho}


def train_mlp(steps: int = 1500) -> tuple[Block, float]:
    """The teacher network: fit the drag law; returns it and its relative RMS error."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    ports_in = {"v": {"unit": "m/s", "shape": [3], "range": [-V_RANGE, V_RANGE]},
                "rho": {"unit": "kg/m**3", "range": [1.0, 1.3]}}  # fmt: skip
    block = Block.mlp(
        ports_in, {"F": {"unit": "N", "shape": [3]}}, hidden=[128, 128, 128], normalize=True
    )
    data = sample(8192, generator)
    block.fit_normalization(data, {"F": drag_law(data["v"], data["rho"])})
    block.check_inputs = False
    optimizer = torch.optim.Adam(block.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    scale = block.out_scale
    for _ in range(steps):
        batch = sample(512, generator)
        loss = ((block(batch)["F"] - drag_law(batch["v"], batch["rho"])) / scale).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    test = sample(20000, generator)
    with torch.no_grad():
        error = block(test)["F"] - drag_law(test["v"], test["rho"])
        rel = (error.pow(2).mean() / drag_law(test["v"], test["rho"]).pow(2).mean()).sqrt()
    return block, float(rel)


def equation_vs_network() -> None:
    drag = build(Module.from_dir(ROOT / "modules" / "drag"), check_inputs=False)
    mlp, fit = train_mlp()
    batch = 65536
    inputs = sample(batch, torch.Generator().manual_seed(1))
    eq_cost = modreg.cost(drag, batch=256, latency=False)
    mlp_cost = modreg.cost(mlp, batch=256, latency=False)
    t_eq = per_call(lambda: drag(inputs), calls=20)
    t_mlp = per_call(lambda: mlp(inputs), calls=2, repeats=5)
    print("== drag equation vs MLP (3 x 128, tanh) fitted to the same law ==")
    print(f"MLP fit error (relative RMS on 20,000 test points): {fit:.2e}")
    print(f"parameters: equation {eq_cost.parameters:,}, MLP {mlp_cost.parameters:,}")
    ratio = mlp_cost.flops_per_sample / eq_cost.flops_per_sample
    print(
        f"FLOPs/sample: equation {eq_cost.flops_per_sample:,.0f}, "
        f"MLP {mlp_cost.flops_per_sample:,.0f}  -> ratio {ratio:,.0f}x (target >= 1000x)"
    )
    print(f"throughput at batch {batch:,} (CPU, {torch.get_num_threads()} threads): equation "
          f"{batch / t_eq:,.0f}/s, MLP {batch / t_mlp:,.0f}/s  -> ratio {t_mlp / t_eq:,.0f}x "
          "(target >= 100x)")  # fmt: skip


class HandWritten(nn.Module):
    """``a = g + F / m`` with ``F = -1/2 rho C_d A |v| v``, written by hand."""

    A: torch.Tensor
    m: torch.Tensor
    g: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.C_d = nn.Parameter(torch.tensor(C_D))
        self.register_buffer("A", torch.tensor(AREA))
        self.register_buffer("m", torch.tensor(MASS))
        self.register_buffer("g", torch.tensor([0.0, 0.0, -9.81]))

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v, rho = inputs["v"], inputs["rho"]
        speed = torch.linalg.vector_norm(v, dim=-1)
        force = (-0.5 * self.A * self.C_d * rho * speed).unsqueeze(-1) * v
        return {"a": self.g + force / self.m}


def builder_overhead() -> None:
    h = Hybrid(
        inputs={"v": {"unit": "m/s", "shape": [3]}, "rho": {"unit": "kg/m**3"}},
        outputs={"a": {"unit": "m/s**2", "shape": [3]}},
    )
    m = h.constant("m", MASS, unit="kg")
    g = h.constant("g", [0.0, 0.0, -9.81], unit="m/s**2")
    drag = h.add("drag", Module.from_dir(ROOT / "modules" / "drag"), v="v", rho="rho")
    h.output("a", g + drag.F / m)
    net = h.build(check_inputs=False)
    hand = HandWritten()
    batch = 4096
    inputs = sample(batch, torch.Generator().manual_seed(2))
    torch.testing.assert_close(net(inputs)["a"], hand(inputs)["a"])
    t_hand = per_call(lambda: hand(inputs), calls=300)
    t_built = per_call(lambda: net(inputs), calls=300)
    net.check_inputs = True
    t_checked = per_call(lambda: net(inputs), calls=300)
    print("\n== builder overhead: built hybrid vs hand-written nn.Module ==")
    print(f"batch {batch:,}: hand-written {t_hand * 1e6:.1f} µs, built {t_built * 1e6:.1f} µs "
          f"-> ratio {t_built / t_hand:.2f}x (target <= 1.2x); with input checks on "
          f"{t_checked * 1e6:.1f} µs ({t_checked / t_hand:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    print(f"torch {torch.__version__}, modreg {modreg.__version__}")
    equation_vs_network()
    builder_overhead()
