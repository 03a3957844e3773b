"""Builders for the check tests: drag-law variants and reference data written as files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DRAG = (ROOT / "modules" / "drag" / "modreg.yaml").read_text()
K = 0.5 * 0.35 * 0.004185  # the drag law's 1/2 C_d A

# The same law written differently, a law off by 1.5 %, and a law right at |v| <~ 35 m/s
# but 7 % off at the corner of its declared range (|v| = 104 m/s).
VARIANTS = {
    "good": ("C_d * A * norm(v) * v", "C_d * A * v * norm(v)"),
    "off": ("-0.5 *", "-0.5075 *"),
    "edge": ("norm(v) * v", "norm(v) * v * (1 + (norm(v) / v_c)**4)"),
}


def write_drag(directory: Path, variant: str | None = None, version: str = "1.0.1") -> Path:
    """A copy of ``modules/drag`` with its equation swapped for a variant."""
    text = DRAG.replace("version: 1.0.0", f"version: {version}")
    if variant is not None:
        text = text.replace(*VARIANTS[variant])
    if variant == "edge":
        text += "  v_c: {value: 200.0, unit: m/s}\n"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "modreg.yaml").write_text(text)
    return directory


def drag_frame(rows: int = 400, *, speed: float = 20.0, seed: int = 1) -> Any:
    """Reference data of the exact drag law, v in [-speed, speed] per axis."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    v = rng.uniform(-speed, speed, (rows, 3))
    rho = rng.uniform(1.0, 1.3, rows)
    force = -K * rho[:, None] * np.linalg.norm(v, axis=1)[:, None] * v
    columns = {f"v[{i}]": v[:, i] for i in range(3)} | {"rho": rho}
    columns |= {f"F[{i}]": force[:, i] for i in range(3)}
    return pd.DataFrame(columns)


def write_csv(path: Path, frame: Any | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (drag_frame() if frame is None else frame).to_csv(path, index=False)
    return path
