"""Stage 3, distill: turn each trained network module into an equation module.

``modreg distill`` (the library call behind it) samples each teacher over its ports' ranges
and searches for the law. Expected: gravity-net -> a constant vector (0, 0, -g); drag-net ->
``F = -k |v| v``. The recovered constants are compared with the simulator's truth: g, and
the drag coefficient ``C_d = k / (rho A / 2)`` at the field's air density and ball size.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

import modreg
from modreg.distill import distill_module
from modreg.errors import PipelineError
from pipelines._common import load_params, parse_section, require, stage, write_metrics
from pipelines._publish import project_registry

OUT = Path("distilled")


class DistillParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int
    samples: Annotated[int, Field(ge=100)]
    time_budget: Annotated[float, Field(gt=0)]
    states: str  # where the teachers are queried: the states they were trained on
    teachers: dict[str, str]  # output folder -> teacher NAME@SPEC


def _constant(module: modreg.Module, index: int = 0) -> Any:
    constants = list(module.manifest.constants.values())
    if not constants:
        raise PipelineError(f"{module.ref}: the law has no fitted constant to compare with truth")
    return constants[index].value


def recovered(
    gravity: modreg.Module, drag: modreg.Module, ball: dict[str, float]
) -> dict[str, float]:
    """Recovered constants and their relative errors against the simulator's truth."""
    g_vec = np.asarray(_constant(gravity), dtype=float)
    k = -float(_constant(drag))
    area = math.pi * ball["radius"] ** 2
    cd = k / (0.5 * ball["air_density"] * area)
    return {
        "g_recovered": float(-g_vec[2]),
        "g_true": ball["gravity"],
        "g_rel_error": abs(-g_vec[2] - ball["gravity"]) / ball["gravity"],
        "g_horizontal": float(np.linalg.norm(g_vec[:2])),
        "drag_k_recovered": k,
        "drag_cd_recovered": cd,
        "drag_cd_true": ball["drag_coefficient"],
        "drag_cd_rel_error": abs(cd - ball["drag_coefficient"]) / ball["drag_coefficient"],
    }


@stage
def main() -> None:
    params = load_params()
    p = parse_section(DistillParams, params, "distill")
    registry = project_registry()
    states = require(p.states, "simulate")
    shutil.rmtree(OUT, ignore_errors=True)
    metrics: dict[str, float] = {}
    modules: dict[str, modreg.Module] = {}
    with modreg.Tracker("showcase", "distill", tags={"stage": "distill"}) as run:
        for folder, teacher in p.teachers.items():
            report = distill_module(
                teacher,
                out=OUT / folder,
                data=states,
                registry=registry,
                samples=p.samples,
                time_budget=p.time_budget,
                seed=p.seed,
            )
            modules[folder] = module = report.module
            for key, value in module.manifest.metrics.items():
                metrics[f"{folder}_{key}"] = float(value)
            laws = ", ".join(f"{port} = {out.expression}" for port, out in report.outputs.items())
            print(f"{teacher} -> {laws}")
            run.log_artifact(report.pareto_png)
            run.log_artifact(report.pareto_json)
        metrics |= recovered(modules["gravity"], modules["drag"], params["ball"])
        run.log_params(params["distill"], prefix="distill.")
        run.log_metrics(metrics)
    write_metrics("distill", metrics)
    print(
        f"g = {metrics['g_recovered']:.4f} m/s² (truth {metrics['g_true']}), "
        f"C_d = {metrics['drag_cd_recovered']:.4f} (truth {metrics['drag_cd_true']})"
    )


if __name__ == "__main__":
    main()
