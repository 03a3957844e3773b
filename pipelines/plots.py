"""Pictures of the showcase (matplotlib, Agg): trajectories, Pareto fronts, compute curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch


def horizontal(path: torch.Tensor) -> torch.Tensor:
    """Ground distance from the first point of a ``(T, 3)`` path."""
    distance: torch.Tensor = torch.linalg.vector_norm(path[:, :2] - path[:1, :2], dim=1)
    return distance


def plot_trajectories(
    split: dict[str, torch.Tensor], predicted: torch.Tensor, path: Path, label: str, count: int = 6
) -> Path:
    """Side view (range vs height) of true, observed and predicted flights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for i in range(min(count, predicted.shape[0])):
        flying = split["t"] <= split["flight_time"][i] + 0.05
        true = split["x_true"][i][flying]
        pred = predicted[i][flying].detach()
        obs = split["x"][i][flying]
        color = f"C{i}"
        ax.plot(
            horizontal(true), true[:, 2], color=color, lw=1.5, label="truth" if i == 0 else None
        )
        ax.plot(
            horizontal(pred),
            pred[:, 2],
            color=color,
            lw=1.2,
            ls="--",
            label=f"predicted ({label})" if i == 0 else None,
        )
        ax.scatter(
            horizontal(obs),
            obs[:, 2],
            color=color,
            s=4,
            alpha=0.4,
            label="observed" if i == 0 else None,
        )
    ax.set_xlabel("horizontal distance (m)")
    ax.set_ylabel("height (m)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Baseball flights: truth vs {label}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
