"""What every showcase stage shares: params, paths, tracking, seeding and error handling."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from modreg.errors import ModregError, PipelineError

ROOT = Path(__file__).resolve().parent.parent


def load_params(path: Path | None = None) -> dict[str, Any]:
    """The whole ``params.yaml`` (each stage validates its own section)."""
    path = path or Path(os.environ.get("MODREG_PARAMS", "params.yaml"))
    if not path.is_file():
        raise PipelineError(f"{path} is missing: run the stage from the project root")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise PipelineError(f"{path} must be a mapping of stage sections")
    return data


Section = TypeVar("Section", bound=BaseModel)


def parse_section(model: type[Section], params: dict[str, Any], section: str) -> Section:
    """Validate one section of params.yaml; a bad value is one line naming it."""
    try:
        return model.model_validate(params.get(section))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PipelineError(
            f"params.yaml: {section}.{where}: {first['msg']} (got {first.get('input')!r})"
        ) from exc


def require(path: str | Path, produced_by: str) -> Path:
    """An upstream output, or a one-line error naming the stage that makes it."""
    file = Path(path)
    if not file.exists():
        raise PipelineError(f"{file} is missing: run the '{produced_by}' stage first (dvc repro)")
    return file


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and make torch deterministic on the CPU."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # identical float results run to run, whatever the core count


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


TIMING = ("seconds", "latency", "energy", "co2")  # energy and CO2: measured, like time


def write_metrics(stage: str, metrics: dict[str, Any]) -> None:
    """``metrics/STAGE.json`` (DVC metrics, identical run to run) and, apart, the timings.

    Wall-clock figures differ on every run, so they go to ``metrics/STAGE_timing.json``
    (and MLflow), keeping the DVC-tracked metrics reproducible bit for bit.
    """
    timing = {k: v for k, v in metrics.items() if any(t in k for t in TIMING)}
    write_json(
        Path("metrics") / f"{stage}.json", {k: v for k, v in metrics.items() if k not in timing}
    )
    write_json(Path("metrics") / f"{stage}_timing.json", timing)


def stage(func: Callable[[], None]) -> Callable[[], None]:
    """Run a stage: modreg errors become one line on stderr and exit code 1."""

    @functools.wraps(func)
    def run() -> None:
        try:
            func()
        except (ModregError, OSError) as exc:
            if os.environ.get("MODREG_DEBUG") == "1":
                raise
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
            sys.exit(1)

    return run
