"""Stage 4, validate: do the distilled equations keep the baseball model's accuracy?

Two checks on the held-out test set, both must hold:

1. ``modreg check replace`` on the published hybrid ``showcase/baseball``: each network part
   is replaced by its equation and the model's acceleration is compared on the reference
   states of the test flights, within ``tolerance``.
2. Landing points: whole flights are integrated with the networks and with the equations;
   the equations' mean landing error may exceed the networks' by at most ``tolerance``
   (relative) plus ``landing_slack_m``.

The check's second half, over the networks' whole declared input ranges, is reported but
does not gate here: there the reference is the network itself, extrapolating far from any
flight (a velocity of (60, -60, -57) m/s never occurs), so a disagreement says the network
is unreliable there as much as the law. Cost before and after (parameters, FLOPs per
sample, latency) comes from ``modreg.cost``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field

import modreg
from modreg.check import CheckReport, check_replacement
from modreg.errors import CheckFailed
from pipelines._common import (
    load_params,
    parse_section,
    require,
    seed_everything,
    stage,
    write_metrics,
)
from pipelines._publish import project_registry
from pipelines.baseball import hybrid, landing_error, load_split, simulate
from pipelines.plots import plot_trajectories


class ValidateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    tolerance: str
    landing_tolerance: Annotated[float, Field(ge=0)]
    landing_slack_m: Annotated[float, Field(ge=0)]
    samples: Annotated[int, Field(ge=0)]


def _costs(net: Any) -> dict[str, float]:
    cost = modreg.cost(net, batch=4096)
    return {
        "parameters": cost.parameters,
        "flops_per_sample": cost.flops_per_sample,
        "latency_s": cost.latency_s or float("nan"),
    }


def inference_energy(networks: Any, equations: Any) -> dict[str, float | str]:
    """Energy per million predictions with networks and with equations, whole and per part.

    codecarbon estimates (labelled with ``energy_method``); empty without codecarbon. The
    saving of a replacement is the network part's energy minus its equation's, both run
    alone at batch 4,096.
    """
    out: dict[str, float | str] = {}
    pairs = [("model", networks, equations)]
    pairs += [(part, networks.parts[part], equations.parts[part]) for part in ("gravity", "drag")]
    for name, before, after in pairs:
        old = modreg.cost(before, batch=4096, latency=False, energy=True)
        new = modreg.cost(after, batch=4096, latency=False, energy=True)
        if old.energy is None or new.energy is None or old.co2 is None or new.co2 is None:
            return {}
        out[f"energy_{name}_networks_j_per_million"] = old.energy
        out[f"energy_{name}_equations_j_per_million"] = new.energy
        out[f"energy_{name}_saved_j_per_million"] = old.energy - new.energy
        out[f"co2_{name}_saved_g_per_million"] = old.co2 - new.co2
        out["energy_method"] = old.energy_method or ""
    return out


@stage
def main() -> None:
    params = load_params()
    p = parse_section(ValidateParams, params, "validate")
    seed_everything(0)
    test = load_split(require("data/baseball/test.npz", "simulate"))
    reference = require("data/baseball/reference.csv", "simulate")
    gravity_eq = modreg.Module.from_dir(require("distilled/gravity", "distill"))
    drag_eq = modreg.Module.from_dir(require("distilled/drag", "distill"))
    registry = project_registry()
    model = registry.pull(p.model)
    report = CheckReport()
    for part, module in (("gravity", gravity_eq), ("drag", drag_eq)):
        check_replacement(
            model,
            module,
            data=reference,
            registry=registry,
            part=part,
            tolerance=p.tolerance,
            samples=p.samples,
            report=report,
        )
    ranges = [r for r in report.results if r.check.endswith(":range")]
    gating = [r for r in report.results if r not in ranges]
    mass = float(params["ball"]["mass"])
    networks = modreg.build(model, registry=registry)
    equations = hybrid(gravity_eq, drag_eq, mass).build()
    with torch.no_grad():
        with_networks, with_equations = simulate(networks, test), simulate(equations, test)
    err_net, err_eq = landing_error(with_networks, test), landing_error(with_equations, test)
    limit = float(err_net.mean()) * (1 + p.landing_tolerance) + p.landing_slack_m
    before, after = _costs(networks), _costs(equations)
    energy = inference_energy(networks, equations)
    metrics = {
        "landing_error_networks_m": float(err_net.mean()),
        "landing_error_equations_m": float(err_eq.mean()),
        "landing_error_limit_m": limit,
        "check_replace_passed": float(all(r.ok for r in gating)),
        **{f"range_{r.module.split(':')[-1]}_passed": float(r.ok) for r in ranges},
        **{f"networks_{k}": v for k, v in before.items()},
        **{f"equations_{k}": v for k, v in after.items()},
        "flops_ratio": before["flops_per_sample"] / max(after["flops_per_sample"], 1.0),
        "latency_ratio": before["latency_s"] / after["latency_s"],
    }
    Path("reports").mkdir(exist_ok=True)
    report.write_junit(Path("reports/validate.xml"))
    plot = plot_trajectories(
        test, with_equations, Path("plots/validate_trajectories.png"), "equations"
    )
    with modreg.Tracker("showcase", "validate", tags={"stage": "validate"}) as run:
        run.log_params(params["validate"], prefix="validate.")
        run.log_metrics(metrics | {k: v for k, v in energy.items() if isinstance(v, float)})
        run.set_tags({k: v for k, v in energy.items() if isinstance(v, str)})
        run.log_artifact(plot)
        run.log_artifact("reports/validate.xml")
    write_metrics("validate", metrics | energy)  # energy, like wall time, kept out of DVC metrics
    for result in report.results:
        print(("note: " if result in ranges else "") + result.line())
    failed = [r for r in gating if not r.ok]
    if failed:
        raise CheckFailed(f"check replace failed: {failed[0].line()}")
    if metrics["landing_error_equations_m"] > limit:
        raise CheckFailed(
            f"landing error with the equations {err_eq.mean():.3f} m exceeds the limit "
            f"{limit:.3f} m (networks {err_net.mean():.3f} m): distillation lost accuracy"
        )
    print(
        f"equations keep accuracy: landing error {err_eq.mean():.3f} m vs {err_net.mean():.3f} m "
        f"with networks, {metrics['flops_ratio']:.0f}x fewer FLOPs"
    )


if __name__ == "__main__":
    main()
