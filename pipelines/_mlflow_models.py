"""The showcase's published equations as MLflow registered models (``mlflow ui`` lists them).

Each published module becomes a version of the registered model named after it
(``physics/drag`` -> ``physics-drag``), logged with the ``modreg`` flavor and tagged with its
modreg ref and digest. A module already registered with the same digest is not logged again,
so a second run of the stage adds no versions. The tracking URI is the showcase's
(``MLFLOW_TRACKING_URI``, a ``sqlite:///`` file or an ``http://`` ``mlflow server``), set by
the :class:`~modreg.Tracker` run this is called in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import modreg
from modreg.errors import PipelineError


@dataclass(frozen=True)
class Registered:
    """One registered model version and the module it serves."""

    model: str
    version: int
    ref: str
    digest: str
    created: bool

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"


def model_name(module: modreg.Module) -> str:
    """``physics/drag`` -> ``physics-drag`` (registered model names stay URI-friendly)."""
    return module.name.replace("/", "-")


def _existing(client: Any, name: str, digest: str) -> int | None:
    versions = client.search_model_versions(f"name='{name}'")
    for version in versions:
        if version.tags.get("modreg.digest") == digest:
            return int(version.version)
    return None


def register(modules: Sequence[modreg.Module], registry: modreg.Registry) -> list[Registered]:
    """Log and register each module (skipping versions already registered with its digest).

    Raises:
        PipelineError: the tracking server refused a call.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    import modreg.mlflow

    client = MlflowClient()
    done = []
    for module in modules:
        name = model_name(module)
        try:
            version = _existing(client, name, module.digest)
            created = version is None
            if version is None:
                info = modreg.mlflow.log_model(
                    module, name=name, registered_model_name=name, registry=registry
                )
                version = int(info.registered_model_version)
        except MlflowException as exc:
            raise PipelineError(f"MLflow could not register {module.ref}: {exc.message}") from exc
        done.append(Registered(name, version, module.ref, module.digest, created))
    return done
