"""The showcase pipeline end to end on small params: real ``dvc repro``, real MLflow sqlite."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# Small enough for the test suite; the default params.yaml is the real showcase.
SMALL = {
    "simulate": {"n_train": 24, "n_val": 4, "n_test": 6},
    "meteors": {"n_train": 4, "n_test": 4},
    "distill": {"samples": 4000, "time_budget": 8},
    "validate": {"samples": 300},
    "reuse": {"hybrid_iterations": 20, "mlp_iterations": 20, "eval_every": 10, "small_data": 2},
}


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for item in ("dvc.yaml", ".dvcignore", "modreg", "pipelines", "modules"):
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, project / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, project / item)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in SMALL.items():
        params[section].update(values)
    params["train"].update(SMALL_TRAIN)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


SMALL_TRAIN: dict[str, object] = {}


def _run(args: list[str], project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two dvc repro runs, beyond the per-test default
def test_showcase_pipeline_small(tmp_path: Path) -> None:
    project = _project(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(project),
        "MODREG_HOME": str(project / ".modreg"),
        "MODREG_REGISTRY": str(project / ".modreg" / "registry"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
    }
    dvc = [sys.executable, "-m", "dvc"]
    assert _run([*dvc, "init", "--no-scm", "-q"], project, env).returncode == 0
    first = _run([*dvc, "repro"], project, env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    published = json.loads((project / "metrics" / "publish.json").read_text())
    assert published["physics/drag"]["version"] == "1.1.0"
    assert published["physics/gravity"]["version"] == "2.0.0"
    for name in ("validate", "distill", "reuse", "train"):
        assert (project / "metrics" / f"{name}.json").is_file()
    for picture in ("train_trajectories", "validate_trajectories", "reuse_compute"):
        assert (project / "plots" / f"{picture}.png").stat().st_size > 10_000
    assert list((project / "distilled").glob("*.pareto.png"))

    with sqlite3.connect(project / "mlflow.db") as db:
        stages = {row[0] for row in db.execute("select name from runs")}
    assert {"train", "distill", "validate", "publish", "reuse"} <= stages

    again = _run([*dvc, "repro"], project, env)
    assert again.returncode == 0
    assert "Running stage" not in again.stdout, again.stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_showcase_runs_unchanged_on_a_team_registry(tmp_path: Path, s3_env: object) -> None:
    """``MODREG_REGISTRY=s3://...`` and nothing else changed: every stage publishes there."""
    from modreg.registry import Registry

    project = _project(tmp_path)
    location = "s3://modreg-test/showcase"
    env = {
        **os.environ,
        "PYTHONPATH": str(project),
        "MODREG_HOME": str(project / ".modreg"),
        "MODREG_REGISTRY": location,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
    }
    dvc = [sys.executable, "-m", "dvc"]
    assert _run([*dvc, "init", "--no-scm", "-q"], project, env).returncode == 0
    done = _run([*dvc, "repro"], project, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not (project / ".modreg" / "registry").exists()
    names = {row.name for row in Registry(location).list()}
    assert {"physics/drag", "physics/gravity", "showcase/baseball"} <= names
    assert Registry(location).verify().ok
