"""MLflow in tests: a throw-away sqlite tracking store and artifact root, and modules to log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from modreg.module import Module
from modreg.registry import Registry
from tests._runtime_helpers import MODULES, VEC3_A, VEC3_V


@contextmanager
def tracking(root: Path) -> Iterator[str]:
    """Point MLflow at ``root/mlflow.db`` with artifacts in ``root/artifacts``; restore after.

    The registry URI is left unset, so it follows the tracking URI (``set_registry_uri``
    would leave ``MLFLOW_REGISTRY_URI`` behind for every later subprocess).
    """
    import mlflow

    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        if mlflow.get_experiment_by_name("tests") is None:
            mlflow.create_experiment("tests", artifact_location=(root / "artifacts").as_uri())
        mlflow.set_experiment("tests")
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)


def library(registry: Registry) -> dict[str, Module]:
    """The project's drag equation and drag network, published and pulled back."""
    pulled = {}
    for folder in ("drag", "drag-mlp"):
        pulled[folder] = registry.pull(registry.publish(MODULES / folder).ref)
    return pulled


def ball_hybrid(registry: Registry, equation: Module, network: Module) -> Any:
    """``a = g + (drag(v, 1.2) + mlp(v)) / m``: an equation and a network as frozen parts."""
    from modreg.runtime import Hybrid

    h = Hybrid({"v": VEC3_V}, {"a": VEC3_A}, name="test/ball", version="1.0.0")
    g = h.constant("g", [0.0, 0.0, -9.81], unit="m/s**2")
    drag = h.add("drag", equation, v="v", rho=1.2)
    mlp = h.add("mlp", network, v="v")
    h.output("a", g + (drag.F + mlp.F) / h.constant("m", 0.145, unit="kg"))
    return h.build(registry=registry)


def reference(net: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """What ``net`` (a built module) gives for numpy inputs, as numpy."""
    tensors = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in inputs.items()}
    with torch.no_grad():
        return {k: v.numpy() for k, v in net(tensors).items()}


# mlflow's own stack warns about itself (its type-hint tables at import, sqlalchemy loader
# options at every query); the suite turns warnings into errors, so those are let through.
MLFLOW_WARNINGS = [
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
]


def import_mlflow() -> Any:
    """``mlflow`` with the submodules the tests use, imported once without its own warnings."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
        import mlflow.models
        import mlflow.pyfunc
    return mlflow
