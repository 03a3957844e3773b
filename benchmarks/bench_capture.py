"""Capturing a part of a plain PyTorch model, and what swapping in its law saves (figures only).

The model is a graph network as a user writes it (not modreg blocks): an edge MLP over every
ordered pair of bodies, messages summed per body with ``index_add``, trained on a stiffening
spring law ``F = 2 * dx * |dx|`` between 2-D bodies. What it measures, baselines in the same
run:

1. Capture overhead: the model's plain forward (no gradients) over batches holding 10^5
   edge rows in all, against ``modreg.capture`` of its edge model over the same batches
   (hooks, mapping, reservoir), medians of ``--repeat`` interleaved runs (target <= 1.5x);
   the same for a model whose part is called once per body (many calls per forward).
2. The law: the captured edge model distilled (``--budget`` s), the recovered expression.
3. Cost: FLOPs per edge call of the MLP against the swapped-in equation (counted on the
   aten operations each runs, ``modreg._cost.count_flops``; target >= 100x fewer), and the
   whole model's latency at N = 8 bodies before and after the swap.

Run (from the repository root, with the venv active)::

    python benchmarks/bench_capture.py
    python benchmarks/bench_capture.py --repeat 3 --budget 20   # a quick run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from rich.console import Console

import modreg
from modreg._cost import count_flops
from modreg.distill import distill_module

K = 2.0
PORTS = {"dx": {"unit": "m", "shape": [2]}, "F": {"unit": "N", "shape": [2]}}


class EdgeMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2)
        )

    def forward(self, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.mlp(x_j - x_i)
        return out


class GraphNet(nn.Module):
    """Messages of every ordered pair of bodies, summed per receiving body."""

    receivers: torch.Tensor
    senders: torch.Tensor
    edge_model: nn.Module

    def __init__(self, bodies: int) -> None:
        super().__init__()
        self.edge_model = EdgeMLP()
        pairs = [(i, j) for i in range(bodies) for j in range(bodies) if i != j]
        self.register_buffer("receivers", torch.tensor([i for i, _ in pairs]))
        self.register_buffer("senders", torch.tensor([j for _, j in pairs]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, bodies, _ = x.shape
        flat = x.reshape(batch * bodies, 2)
        edges = len(self.senders)
        offset = (torch.arange(batch) * bodies).repeat_interleave(edges)
        receivers = self.receivers.repeat(batch) + offset
        senders = self.senders.repeat(batch) + offset
        messages = self.edge_model(flat[receivers], flat[senders])
        out: torch.Tensor = torch.zeros_like(flat).index_add(0, receivers, messages)
        return out.reshape(x.shape)


class PerBody(nn.Module):
    """The same edge model called once per receiving body: many part calls per forward."""

    def __init__(self, edge: nn.Module) -> None:
        super().__init__()
        self.edge_model = edge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(x.shape[1]):
            others = torch.cat([x[:, :i], x[:, i + 1 :]], dim=1)
            messages = self.edge_model(x[:, i : i + 1].expand_as(others), others)
            out.append(messages.sum(dim=1))
        return torch.stack(out, dim=1)


def _truth(x: torch.Tensor) -> torch.Tensor:
    dx = x[:, None, :, :] - x[:, :, None, :]
    forces: torch.Tensor = (K * dx * dx.norm(dim=-1, keepdim=True)).sum(dim=2)
    return forces


def _train(steps: int) -> GraphNet:
    torch.manual_seed(0)
    model = GraphNet(4)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-2, total_steps=steps)
    for _ in range(steps):
        x = torch.rand(128, 4, 2) * 2 - 1
        loss = ((model(x) - _truth(x)) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return model.eval()


def _interleaved(runs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(found) for name, found in times.items()}


def _plain(model: nn.Module, batches: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for batch in batches:
            model(batch)


def _capture(model: nn.Module, batches: list[torch.Tensor], rows: int) -> modreg.Capture:
    return modreg.capture(
        model,
        "edge_model",
        batches,
        inputs=lambda x_i, x_j: {"dx": (x_j - x_i).reshape(-1, 2)},
        ports=PORTS,
        call=lambda dx: (torch.zeros_like(dx), dx),
        max_rows=rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per timing (median)")
    parser.add_argument("--budget", type=float, default=30.0, help="distillation seconds")
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    args = parser.parse_args()
    console = Console()
    torch.set_num_threads(1)

    console.print(f"training the graph network ({args.steps} steps) ...")
    model = _train(args.steps)
    rows = 100_000
    batches = [torch.rand(64, 4, 2) * 2 - 1 for _ in range(rows // (64 * 12) + 1)]
    per_body = PerBody(model.edge_model).eval()
    small = [torch.rand(8, 4, 2) * 2 - 1 for _ in range(rows // (8 * 3 * 4) + 1)]
    calls = len(small) * 4

    timed = _interleaved(
        {
            "plain": lambda: _plain(model, batches),
            "capture": lambda: _capture(model, batches, rows),
            "plain, per body": lambda: _plain(per_body, small),
            "capture, per body": lambda: _capture(per_body, small, rows),
        },
        args.repeat,
    )
    console.print("\n[bold]1. capture overhead[/] (medians, interleaved)")
    console.print(
        f"  batched part: {len(batches) * 64 * 12:,} edge rows in {len(batches)} calls: "
        f"plain {timed['plain'] * 1e3:.1f} ms, capture {timed['capture'] * 1e3:.1f} ms: "
        f"{timed['capture'] / timed['plain']:.2f}x (target <= 1.5x)"
    )
    console.print(
        f"  part called per body: {calls:,} calls, {calls * 3 * 8:,} rows: plain "
        f"{timed['plain, per body'] * 1e3:.1f} ms, capture "
        f"{timed['capture, per body'] * 1e3:.1f} ms: "
        f"{timed['capture, per body'] / timed['plain, per body']:.2f}x"
    )

    cap = _capture(model, batches[:10], 20_000)
    # The user's validation error of the edge model, as a network module records it:
    # distillation settles to it instead of assuming 1 % of the output's RMS.
    table = cap.table()
    law = K * table["dx"] * np.linalg.norm(table["dx"], axis=1, keepdims=True)
    cap.metrics = {"rmse_F": float(np.sqrt(np.mean((table["F"] - law) ** 2)))}
    with tempfile.TemporaryDirectory(prefix="modreg-bench-capture-") as tmp:
        report = distill_module(
            cap, out=Path(tmp) / "force", time_budget=args.budget, seed=0, samples=2000
        )
        found = report.outputs["F"].expression
        console.print(
            f"\n[bold]2. the law[/]: F = {found}   (truth: F = {K:g}*dx*norm(dx); the "
            f"network's own error {cap.metrics['rmse_F']:.2e} N)"
        )
        swapped = modreg.swap(model, "edge_model", report.module, cap)
        built = modreg.build(report.module)

    edges = torch.rand(1024, 2) * 2 - 1
    network_flops = count_flops(model.edge_model.get_submodule("mlp"), edges) / 1024
    equation_flops = count_flops(built, {"dx": edges}) / 1024
    console.print("\n[bold]3. cost[/]")
    console.print(
        f"  edge part FLOPs per call: MLP {network_flops:,.0f}, equation {equation_flops:,.0f}: "
        f"{network_flops / equation_flops:,.0f}x fewer (target >= 100x)"
    )
    eight = torch.rand(256, 8, 2) * 2 - 1
    model8, swapped8 = GraphNet(8), GraphNet(8)
    model8.edge_model = model.edge_model
    swapped8.edge_model = swapped.get_submodule("edge_model")
    latency = _interleaved(
        {"network": lambda: _plain(model8, [eight]), "equation": lambda: _plain(swapped8, [eight])},
        max(args.repeat, 5) * 4,
    )
    console.print(
        f"  whole model at N = 8 bodies, batch 256: network {latency['network'] * 1e3:.2f} ms, "
        f"equation {latency['equation'] * 1e3:.2f} ms: "
        f"{latency['network'] / latency['equation']:.1f}x faster"
    )
    with torch.no_grad():
        error_net = (model8(eight) - _truth(eight)).pow(2).mean().sqrt().item()
        error_eq = (swapped8(eight) - _truth(eight)).pow(2).mean().sqrt().item()
    console.print(
        f"  held-out acceleration RMSE at N = 8 (trained at N = 4): network {error_net:.2e}, "
        f"equation {error_eq:.2e}"
    )


if __name__ == "__main__":
    main()
