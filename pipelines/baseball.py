"""The baseball model of the showcase: acceleration = gravity-net(x) + drag-net(v) / m.

Shared by the train, validate and publish stages so every stage builds the same graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import modreg
from pipelines.physics import landing_points

POSITION = {"unit": "m", "shape": [3], "range": [-150.0, 150.0]}
VELOCITY = {"unit": "m/s", "shape": [3], "range": [-60.0, 60.0]}
ACCELERATION = {"unit": "m/s**2", "shape": [3], "range": [-20.0, 20.0]}
FORCE = {"unit": "N", "shape": [3], "range": [-4.0, 4.0]}


def hybrid(gravity: Any, drag: Any, mass: float) -> modreg.Hybrid:
    """The modular acceleration model with the given gravity and drag parts."""
    h = modreg.Hybrid(
        inputs={"x": POSITION, "v": VELOCITY},
        outputs={"a": ACCELERATION},
        name="showcase/baseball",
        summary="Acceleration of a hit baseball: gravity plus air drag over mass",
    )
    m = h.constant("m", mass, unit="kg")
    g = h.add("gravity", gravity, x="x")
    d = h.add("drag", drag, v="v")
    h.output("a", g.g + d.F / m)
    return h


def load_split(path: Path) -> dict[str, torch.Tensor]:
    with np.load(path, allow_pickle=False) as data:
        return {key: torch.from_numpy(np.asarray(data[key])).float() for key in data.files}


def simulate(net: Any, split: dict[str, torch.Tensor], *, method: str = "rk4") -> torch.Tensor:
    """Predicted positions ``(batch, T, 3)`` from each trajectory's launch state."""
    t = split["t"]
    out = modreg.rollout(
        net,
        {"x": split["x0"], "v": split["v0"]},
        dt=float(t[1] - t[0]),
        steps=len(t) - 1,
        derivatives={"x": "v", "v": "a"},
        method=method,
    )
    return out["x"].transpose(0, 1)


def in_flight(split: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mask ``(batch, T)`` of observations taken before the ball landed."""
    return split["t"][None, :] <= split["flight_time"][:, None]


def landing_error(predicted: torch.Tensor, split: dict[str, torch.Tensor]) -> np.ndarray:
    """Distance (m) between predicted and true landing points, per trajectory."""
    t = split["t"].double().numpy()
    landing, _ = landing_points(predicted.detach().double().numpy(), t)
    distance: np.ndarray = np.linalg.norm(landing - split["landing"].double().numpy(), axis=1)
    return distance
