"""The showcase's energy figures: estimates from codecarbon, absent without it, out of DVC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modreg._energy import EnergyEstimate
from pipelines import summary
from pipelines._common import write_metrics
from pipelines.reuse import Curve, training_energy

METHOD = "estimate: codecarbon 3.3 offline, CPU power estimated as TDP × the process's CPU load"


def _curves() -> tuple[Curve, Curve]:
    hybrid = Curve("hybrid", flops=[1.0, 2.0], seconds=[1.0, 4.0], error=[50.0, 10.0])
    mlp = Curve("mlp", flops=[5.0, 9.0], seconds=[10.0, 20.0], error=[40.0, 12.0])
    return hybrid, mlp


def test_training_energy_compares_the_runs_and_the_way_to_the_same_error() -> None:
    estimates = (
        EnergyEstimate(8.0, 1.0, 4.0, 1, METHOD),
        EnergyEstimate(80.0, 9.0, 20.0, 1, METHOD),
    )
    out = training_energy(_curves(), estimates)
    assert out["training_energy_ratio"] == pytest.approx(10.0)
    # target 12 m: the hybrid reaches it at 4 s of 4 s, the MLP at 20 s of 20 s
    assert out["hybrid_energy_to_target_j"] == pytest.approx(8.0)
    assert out["mlp_energy_to_target_j"] == pytest.approx(80.0)
    assert out["energy_method"] == METHOD


def test_without_codecarbon_there_are_no_energy_figures() -> None:
    assert training_energy(_curves(), (None, None)) == {}
    assert summary.energy_rows({}, {}) == []


def test_energy_stays_out_of_the_dvc_metrics_and_reaches_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_metrics(
        "validate",
        {
            "flops_ratio": 100.0,
            "energy_model_networks_j_per_million": 30.0,
            "energy_model_equations_j_per_million": 3.0,
            "energy_model_saved_j_per_million": 27.0,
            "energy_drag_saved_j_per_million": 20.0,
            "co2_drag_saved_g_per_million": 2.0,
            "energy_method": METHOD,
        },
    )
    assert json.loads(Path("metrics/validate.json").read_text()) == {"flops_ratio": 100.0}
    rows = {row[0]: row[1:] for row in summary.energy_rows(summary._load("validate"), {})}
    assert rows["energy per 1M predictions: networks -> equations (estimate)"] == (
        "30 J -> 3 J",
        "saves 27 J",
    )
    assert rows["energy saved per 1M predictions replacing drag (estimate)"] == (
        "20 J",
        "2 g CO2eq",
    )
    assert summary.energy_note() == f"energy: {METHOD}"
