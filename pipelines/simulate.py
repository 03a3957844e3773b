"""Stage 1, simulate: baseball trajectories with measurement noise, split train/val/test.

Writes ``data/baseball/{train,val,test}.npz`` (no pickles: plain arrays) and
``metrics/simulate.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modreg.errors import PipelineError
from pipelines._common import load_params, parse_section, stage, write_metrics
from pipelines.physics import Body, acceleration, integrate, landing_points

Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1, le=100_000)]
OUT = Path("data/baseball")


class BallParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mass: Positive
    radius: Positive
    drag_coefficient: Positive
    air_density: Positive
    gravity: Positive


class MeteorParams(BaseModel):
    """A stony meteorite in dark flight (after ablation) through an exponential atmosphere."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    n_train: Count
    n_test: Count
    mass: Positive
    radius: Positive
    drag_coefficient: Positive
    sea_level_density: Positive
    scale_height: Positive
    altitude: tuple[Positive, Positive]
    speed: tuple[Positive, Positive]
    dive_deg: tuple[float, float]
    dt: Positive
    steps: Count
    substeps: Count
    noise_std: Annotated[float, Field(ge=0)]


class SimulateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int
    n_train: Count
    n_val: Count
    n_test: Count
    dt: Positive
    steps: Count
    substeps: Count
    noise_std: Annotated[float, Field(ge=0)]
    speed: tuple[Positive, Positive]
    elevation_deg: tuple[float, float]
    azimuth_deg: tuple[float, float]
    height: Annotated[float, Field(ge=0)]


def launch(p: SimulateParams, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Initial positions and velocities of ``n`` hits."""
    speed = rng.uniform(*p.speed, n)
    elevation = np.radians(rng.uniform(*p.elevation_deg, n))
    azimuth = np.radians(rng.uniform(*p.azimuth_deg, n))
    v0 = np.stack(
        [
            speed * np.cos(elevation) * np.cos(azimuth),
            speed * np.cos(elevation) * np.sin(azimuth),
            speed * np.sin(elevation),
        ],
        axis=1,
    )
    x0 = np.zeros((n, 3))
    x0[:, 2] = p.height
    return x0, v0


def meteors(p: MeteorParams, gravity: float) -> dict[str, float]:
    """Dark-flight trajectories of meteorites: ``data/meteors/{train,test}.npz``."""
    body = Body(p.mass, p.radius, p.drag_coefficient)
    density = lambda z: p.sea_level_density * np.exp(-np.clip(z, 0, None) / p.scale_height)  # noqa: E731
    accel = acceleration(body, gravity, density)
    rng = np.random.default_rng(p.seed)
    t = np.arange(p.steps + 1) * p.dt
    out = Path("data/meteors")
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, float] = {}
    for split, n in (("train", p.n_train), ("test", p.n_test)):
        speed = rng.uniform(*p.speed, n)
        dive = np.radians(rng.uniform(*p.dive_deg, n))
        heading = rng.uniform(0, 2 * np.pi, n)
        v0 = np.stack(
            [
                speed * np.cos(dive) * np.cos(heading),
                speed * np.cos(dive) * np.sin(heading),
                -speed * np.sin(dive),
            ],
            axis=1,
        )
        x0 = np.zeros((n, 3))
        x0[:, 2] = rng.uniform(*p.altitude, n)
        *_, flight = fly(accel, x0, v0, t, p, rng, out / f"{split}.npz", "raise meteors.steps")
        summary[f"meteor_{split}_mean_flight_s"] = float(flight.mean())
    return summary


def fly(
    accel: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x0: np.ndarray,
    v0: np.ndarray,
    t: np.ndarray,
    p: SimulateParams | MeteorParams,
    rng: np.random.Generator,
    path: Path,
    fix: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integrate flights, add tracking noise, save them as ``path``.

    Returns:
        True positions, velocities, landing points and flight times.

    Raises:
        PipelineError: a flight has not landed by the end of the horizon (``fix`` says how).
    """
    x, v = integrate(accel, x0, v0, dt=p.dt, steps=p.steps, substeps=p.substeps)
    observed = x + rng.normal(0.0, p.noise_std, x.shape)
    if (x[:, -1, 2] >= 0).any():
        raise PipelineError(f"some flights of {path} have not landed after {t[-1]:.2f} s: {fix}")
    landing, flight = landing_points(x, t)
    np.savez(path, t=t, x0=x0, v0=v0, x=observed, x_true=x, v_true=v, landing=landing,
             flight_time=flight)  # fmt: skip
    return x, v, landing, flight


def write_columns(path: Path, vectors: dict[str, np.ndarray]) -> None:
    """A CSV of 3-vectors per row, in ``modreg check``'s convention: ``x[0], x[1], x[2], ...``."""
    columns = {f"{name}[{i}]": arr[:, i] for name, arr in vectors.items() for i in range(3)}
    rows = np.column_stack(list(columns.values()))
    np.savetxt(path, rows, delimiter=",", header=",".join(columns), comments="", fmt="%.10g")


@stage
def main() -> None:
    params = load_params()
    sim = parse_section(SimulateParams, params, "simulate")
    ball = parse_section(BallParams, params, "ball")
    body = Body(ball.mass, ball.radius, ball.drag_coefficient)
    accel = acceleration(body, ball.gravity, lambda z: np.full_like(z, ball.air_density))
    rng = np.random.default_rng(sim.seed)
    t = np.arange(sim.steps + 1) * sim.dt
    OUT.mkdir(parents=True, exist_ok=True)
    summary: dict[str, float] = {}
    for split, n in (("train", sim.n_train), ("val", sim.n_val), ("test", sim.n_test)):
        x0, v0 = launch(sim, n, rng)
        fix = "raise simulate.steps or lower simulate.speed"
        x, v, landing, flight = fly(accel, x0, v0, t, sim, rng, OUT / f"{split}.npz", fix)
        summary[f"{split}_trajectories"] = n
        if split == "train":  # where the ball flew: distillation queries the networks there
            flying = (t <= flight[:, None])[:, ::2]
            write_columns(OUT / "states.csv", {"x": x[:, ::2][flying], "v": v[:, ::2][flying]})
        if split == "test":
            # Reference states of the test flights with their true acceleration (check replace).
            flying = t[None, :] <= flight[:, None]
            states = {"x": x[flying], "v": v[flying]}
            write_columns(OUT / "reference.csv", states | {"a": accel(states["x"], states["v"])})
        summary[f"{split}_mean_range_m"] = float(np.linalg.norm(landing, axis=1).mean())
    summary["drag_constant_true"] = body.drag_constant(ball.air_density)
    summary |= meteors(parse_section(MeteorParams, params, "meteors"), ball.gravity)
    write_metrics("simulate", summary)
    print(f"simulated {sim.n_train}/{sim.n_val}/{sim.n_test} trajectories -> {OUT}")


if __name__ == "__main__":
    main()
