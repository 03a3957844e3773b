"""Stage 6, reuse: meteorites, from pulled equations plus a small block, against a pure MLP.

What baseballs never taught is how drag changes with altitude: the air thins as
``rho0 exp(-z/H)``. The hybrid pulls the published ``physics/gravity`` and ``physics/drag``
equations (frozen) and trains only a tiny ``rho-net(x)`` that feeds the drag law's density
port. (It learns the *effective* density the law sees, so a meteorite's other cross-section
and drag coefficient are absorbed into its scale; its shape with altitude is the physics.)
The baseline is a neural ODE ``a = MLP(x, v)`` trained from scratch on the same data.

Both train by RK4 rollouts on observed dark-flight positions. Training compute is counted in
FLOPs (``modreg.cost`` per sample x evaluations, x3 for the backward pass) and wall time;
held-out landing error is measured along the way. Reported: error-vs-compute curves, the
compute each model needs to reach the same held-out error and their ratio, and the final
error of each for a smaller and a larger training set (data needs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field

import modreg
from modreg._energy import EnergyEstimate, track
from pipelines._common import (
    load_params,
    parse_section,
    require,
    seed_everything,
    stage,
    write_json,
    write_metrics,
)
from pipelines._progress import progress_bar
from pipelines._publish import project_registry
from pipelines.baseball import in_flight, landing_error, load_split

POSITION = {"unit": "m", "shape": [3], "range": [-20000.0, 20000.0]}
VELOCITY = {"unit": "m/s", "shape": [3], "range": [-300.0, 300.0]}
ACCELERATION = {"unit": "m/s**2", "shape": [3], "range": [-30.0, 30.0]}
DENSITY = {"unit": "kg/m**3", "range": [0.0, 2.0]}
ALTITUDE = {"unit": "m", "range": [0.0, 15000.0]}


class ReuseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int
    gravity: str
    drag: str
    rho_hidden: list[Annotated[int, Field(ge=1)]]
    mlp_hidden: list[Annotated[int, Field(ge=1)]]
    hybrid_iterations: Annotated[int, Field(ge=1)]
    mlp_iterations: Annotated[int, Field(ge=1)]
    hybrid_lr: Annotated[float, Field(gt=0)]
    mlp_lr: Annotated[float, Field(gt=0)]
    eval_every: Annotated[int, Field(ge=1)]
    small_data: Annotated[int, Field(ge=1)]
    curriculum: Annotated[float, Field(gt=0, le=1)]
    start_steps: Annotated[int, Field(ge=1)]


@dataclass
class Curve:
    """Held-out landing error against cumulative training compute."""

    name: str
    flops: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    error: list[float] = field(default_factory=list)

    def compute_to_reach(self, target: float) -> tuple[float, float]:
        """(FLOPs, seconds) at the first evaluation with error <= target (inf if never)."""
        for flops, seconds, error in zip(self.flops, self.seconds, self.error, strict=True):
            if error <= target:
                return flops, seconds
        return float("inf"), float("inf")


def hybrid_model(gravity: Any, drag: Any, mass: float, hidden: list[int]) -> Any:
    """Frozen pulled equations plus a fresh ``rho-net`` feeding the drag law's density."""
    h = modreg.Hybrid(
        inputs={"x": POSITION, "v": VELOCITY}, outputs={"a": ACCELERATION}, name="showcase/meteor"
    )
    up = h.constant("up", [0.0, 0.0, 1.0])
    block = modreg.Block.mlp({"z": ALTITUDE}, {"rho": DENSITY}, hidden=hidden, normalize=True)
    rho = h.add("rho", block, z=f"dot(x, {up})")
    g = h.add("gravity", gravity, x="x")
    d = h.add("drag", drag, v="v", rho=rho.rho)
    h.output("a", g.g + d.F / h.constant("m", mass, unit="kg"))
    return h.build(check_inputs=False)


def mlp_model(hidden: list[int]) -> Any:
    block = modreg.Block.mlp(
        {"x": POSITION, "v": VELOCITY}, {"a": ACCELERATION}, hidden=hidden, normalize=True
    )
    block.check_inputs = False
    return block


def _rollout(net: Any, split: dict[str, torch.Tensor], steps: int | None = None) -> torch.Tensor:
    t = split["t"]
    steps = len(t) - 1 if steps is None else steps
    out = modreg.rollout(
        net,
        {"x": split["x0"], "v": split["v0"]},
        dt=float(t[1] - t[0]),
        steps=steps,
        derivatives={"x": "v", "v": "a"},
    )
    return out["x"].transpose(0, 1)


def train_curve(
    name: str,
    net: Any,
    data: dict[str, torch.Tensor],
    test: dict[str, torch.Tensor],
    iterations: int,
    lr: float,
    p: ReuseParams,
    eval_every: int,
) -> Curve:
    """Train ``net`` by rollouts and record held-out landing error against compute.

    The rollout horizon grows from ``start_steps`` to the whole flight over the first
    ``curriculum`` fraction of iterations (long rollouts from a random start are badly
    conditioned); compute counts the steps actually integrated.
    """
    params = [q for q in net.parameters() if q.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations)
    per_sample = modreg.cost(net, batch=256, latency=False).flops_per_sample
    total = data["t"].numel() - 1
    ramp = max(1, round(p.curriculum * iterations))
    mask, curve, spent, clock = in_flight(data), Curve(name), 0.0, 0.0
    scale = 1000.0  # positions in km keep the loss near 1
    with progress_bar(name, iterations) as advance:
        for iteration in range(1, iterations + 1):
            steps = min(total, p.start_steps + (total - p.start_steps) * (iteration - 1) // ramp)
            started = time.perf_counter()
            err = ((_rollout(net, data, steps) - data["x"][:, : steps + 1]) / scale) ** 2
            loss = (err.sum(-1) * mask[:, : steps + 1]).sum() / mask[:, : steps + 1].sum()
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
            clock += time.perf_counter() - started
            # RK4 evaluates the model 4x a step; the backward pass costs ~2x the forward.
            spent += 3.0 * 4 * per_sample * data["x0"].shape[0] * steps
            if iteration % eval_every == 0 or iteration == iterations:
                with torch.no_grad():
                    error = float(landing_error(_rollout(net, test), test).mean())
                curve.flops.append(spent)
                curve.seconds.append(clock)
                curve.error.append(error)
            measured = f"{curve.error[-1]:8.1f} m" if curve.error else "measured at the end"
            advance(f"landing error {measured}")
    return curve


def _subset(split: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    return {k: v if k == "t" else v[:n] for k, v in split.items()}


def compare(curves: tuple[Curve, Curve]) -> dict[str, float]:
    """Compute each needs to reach the same held-out error (the worse of the two bests)."""
    hybrid, mlp = curves
    target = max(min(hybrid.error), min(mlp.error))
    h_flops, h_sec = hybrid.compute_to_reach(target)
    m_flops, m_sec = mlp.compute_to_reach(target)
    return {
        "target_landing_error_m": target,
        "hybrid_flops_to_target": h_flops,
        "mlp_flops_to_target": m_flops,
        "hybrid_seconds_to_target": h_sec,
        "mlp_seconds_to_target": m_sec,
        "compute_ratio_flops": m_flops / h_flops,
        "compute_ratio_seconds": m_sec / h_sec,
        "hybrid_final_error_m": hybrid.error[-1],
        "mlp_final_error_m": mlp.error[-1],
    }


def training_energy(
    curves: tuple[Curve, Curve], estimates: tuple[EnergyEstimate | None, EnergyEstimate | None]
) -> dict[str, float | str]:
    """Training energy of each model (codecarbon estimates; empty without codecarbon).

    The energy to the common target error is the run's energy times the share of its
    training time spent before reaching it (power is steady through a run).
    """
    hybrid, mlp = estimates
    if hybrid is None or mlp is None:
        return {}
    target = max(min(curves[0].error), min(curves[1].error))
    out: dict[str, float | str] = {"energy_method": hybrid.method}
    for curve, found in zip(curves, (hybrid, mlp), strict=True):
        seconds = curve.compute_to_reach(target)[1]
        share = seconds / curve.seconds[-1] if curve.seconds[-1] > 0 else float("nan")
        out[f"{curve.name}_training_energy_j"] = found.joules
        out[f"{curve.name}_training_co2_g"] = found.co2_g
        out[f"{curve.name}_energy_to_target_j"] = found.joules * share
    out["training_energy_ratio"] = mlp.joules / hybrid.joules if hybrid.joules else float("nan")
    h, m = out["hybrid_energy_to_target_j"], out["mlp_energy_to_target_j"]
    assert isinstance(h, float) and isinstance(m, float)
    out["energy_ratio_to_target"] = m / h if h else float("nan")
    return out


def plot(curves: tuple[Curve, Curve], target: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for curve, style in zip(curves, ("-o", "-s"), strict=True):
        axes[0].loglog(curve.flops, curve.error, style, ms=3, label=curve.name)
        axes[1].loglog(curve.seconds, curve.error, style, ms=3, label=curve.name)
    for ax, xlabel in zip(
        axes, ("training compute (FLOPs)", "training wall time (s)"), strict=True
    ):
        ax.axhline(target, color="grey", ls=":", label=f"same error ({target:.0f} m)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("held-out landing error (m)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Meteorites: reused equations + small block vs MLP from scratch")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


@stage
def main() -> None:
    params = load_params()
    p = parse_section(ReuseParams, params, "reuse")
    mass = float(params["meteors"]["mass"])
    seed_everything(p.seed)
    train = load_split(require("data/meteors/train.npz", "simulate"))
    test = load_split(require("data/meteors/test.npz", "simulate"))
    registry = project_registry()
    gravity, drag = registry.pull(p.gravity), registry.pull(p.drag)
    with modreg.Tracker("showcase", "reuse", tags={"stage": "reuse"}) as run:
        torch.manual_seed(p.seed)
        with track() as hybrid_meter:
            hybrid = train_curve(
                "hybrid",
                hybrid_model(gravity, drag, mass, p.rho_hidden),
                train,
                test,
                p.hybrid_iterations,
                p.hybrid_lr,
                p,
                p.eval_every,
            )
        torch.manual_seed(p.seed)
        with track() as mlp_meter:
            mlp = train_curve(
                "mlp",
                mlp_model(p.mlp_hidden),
                train,
                test,
                p.mlp_iterations,
                p.mlp_lr,
                p,
                p.eval_every,
            )
        metrics = compare((hybrid, mlp))
        energy = training_energy((hybrid, mlp), (hybrid_meter.estimate, mlp_meter.estimate))
        small = _subset(train, p.small_data)
        makers: tuple[tuple[str, Callable[[], Any], int, float], ...] = (
            (
                "hybrid",
                lambda: hybrid_model(gravity, drag, mass, p.rho_hidden),
                p.hybrid_iterations,
                p.hybrid_lr,
            ),
            ("mlp", lambda: mlp_model(p.mlp_hidden), p.mlp_iterations, p.mlp_lr),
        )
        for name, make, iterations, lr in makers:
            torch.manual_seed(p.seed)
            label = f"{name} ({p.small_data} flights)"
            curve = train_curve(label, make(), small, test, iterations, lr, p, iterations)
            metrics[f"{name}_error_small_data_m"] = curve.error[-1]
        picture = plot(
            (hybrid, mlp), metrics["target_landing_error_m"], Path("plots/reuse_compute.png")
        )
        curves = {c.name: {"flops": c.flops, "error": c.error} for c in (hybrid, mlp)}
        write_json(Path("metrics/reuse_curves.json"), curves)  # FLOPs and error: reproducible
        timings = {c.name: c.seconds for c in (hybrid, mlp)}
        write_json(Path("metrics/reuse_curves_timing.json"), timings)
        run.log_params(params["reuse"], prefix="reuse.")
        run.log_metrics(metrics | {k: v for k, v in energy.items() if isinstance(v, float)})
        run.set_tags({k: v for k, v in energy.items() if isinstance(v, str)})
        run.log_artifact(picture)
    write_metrics("reuse", metrics | energy)  # energy, like wall time, kept out of DVC metrics
    print(
        f"hybrid needs {metrics['compute_ratio_flops']:.0f}x less training compute (FLOPs) than "
        f"the MLP to reach {metrics['target_landing_error_m']:.1f} m held-out landing error"
    )


if __name__ == "__main__":
    main()
