"""The showcase's closing table: accuracy, cost, recovered constants, savings on meteorites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table


def _load(name: str) -> dict[str, Any]:
    """A stage's metrics with its timings (kept in a file of their own) merged in."""
    data: dict[str, Any] = {}
    for path in (Path("metrics") / f"{name}.json", Path("metrics") / f"{name}_timing.json"):
        data |= json.loads(path.read_text()) if path.is_file() else {}
    return data


def _f(data: dict[str, Any], key: str, spec: str) -> str:
    value = data.get(key)
    return format(value, spec) if isinstance(value, int | float) else "-"


def rows() -> list[tuple[str, str, str]]:
    distill, validate, reuse = _load("distill"), _load("validate"), _load("reuse")
    v, d, r = validate, distill, reuse
    table = [
        ("landing error with networks (test)", f"{_f(v, 'landing_error_networks_m', '.3f')} m", ""),
        ("landing error with equations (test)", f"{_f(v, 'landing_error_equations_m', '.3f')} m",
         f"limit {_f(v, 'landing_error_limit_m', '.3f')} m"),
        ("FLOPs per sample: networks -> equations",
         f"{_f(v, 'networks_flops_per_sample', ',.0f')} -> "
         f"{_f(v, 'equations_flops_per_sample', ',.0f')}",
         f"{_f(v, 'flops_ratio', ',.0f')}x cheaper"),
        ("parameters: networks -> equations",
         f"{_f(v, 'networks_parameters', ',.0f')} -> {_f(v, 'equations_parameters', ',.0f')}", ""),
        ("latency at batch 4,096", f"{_f(v, 'latency_ratio', ',.1f')}x faster", ""),
        ("g recovered", f"{_f(d, 'g_recovered', '.4f')} m/s²", f"truth {_f(d, 'g_true', 'g')}"),
        ("drag coefficient recovered", _f(d, "drag_cd_recovered", ".4f"),
         f"truth {_f(d, 'drag_cd_true', 'g')}"),
        ("meteorites: training compute to the same error",
         f"{_f(r, 'compute_ratio_flops', ',.0f')}x less FLOPs",
         f"at {_f(r, 'target_landing_error_m', '.1f')} m held-out"),
        ("meteorites: training wall time to the same error",
         f"{_f(r, 'compute_ratio_seconds', ',.1f')}x less", ""),
        ("meteorites: error from few flights, hybrid vs MLP",
         f"{_f(r, 'hybrid_error_small_data_m', '.1f')} m vs "
         f"{_f(r, 'mlp_error_small_data_m', '.1f')} m", ""),
    ]  # fmt: skip
    table += energy_rows(v, r)
    published = _load("publish")
    table += [(f"published {n}", i["version"], i["digest"][:19]) for n, i in published.items()]
    return table


def _j(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return f"{value:,.3g} J" if isinstance(value, int | float) else "-"


def energy_rows(v: dict[str, Any], r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Energy estimates (codecarbon), when the stages measured them: none without it."""
    rows = []
    if "energy_method" in v:
        rows.append((
            "energy per 1M predictions: networks -> equations (estimate)",
            f"{_j(v, 'energy_model_networks_j_per_million')} -> "
            f"{_j(v, 'energy_model_equations_j_per_million')}",
            f"saves {_j(v, 'energy_model_saved_j_per_million')}",
        ))  # fmt: skip
        for part in ("gravity", "drag"):
            rows.append((
                f"energy saved per 1M predictions replacing {part} (estimate)",
                _j(v, f"energy_{part}_saved_j_per_million"),
                f"{_f(v, f'co2_{part}_saved_g_per_million', '.3g')} g CO2eq",
            ))  # fmt: skip
    if "energy_method" in r:
        rows.append((
            "meteorites: training energy, hybrid vs MLP (estimate)",
            f"{_j(r, 'hybrid_training_energy_j')} vs {_j(r, 'mlp_training_energy_j')}",
            f"{_f(r, 'energy_ratio_to_target', ',.1f')}x less to the same error",
        ))  # fmt: skip
    return rows


def energy_note() -> str:
    """How the energy figures were estimated, or why there are none."""
    for name in ("validate", "reuse"):
        method = _load(name).get("energy_method")
        if method:
            return f"energy: {method}"
    return "energy: not measured (pip install codecarbon for estimates)"


def main() -> None:
    table = Table(title="modreg showcase: baseball -> equations -> meteorites")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("what", "left"),
        ("result", "right"),
        ("reference", "right"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for row in rows():
        table.add_row(*row)
    Console().print(table)
    print(energy_note())
    print("plots: plots/*.png  metrics: metrics/*.json")
    print("runs:  mlflow ui --backend-store-uri sqlite:///mlflow.db")


if __name__ == "__main__":
    main()
