"""``log_model``: a modreg module into an MLflow run and, optionally, the Model Registry."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from modreg.errors import ConfigError

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = ["MODEL_VERSION_TAGS", "log_model"]

MODEL_VERSION_TAGS = ("modreg.ref", "modreg.digest", "modreg.kind")


def log_model(
    module: Any,
    name: str = "model",
    *,
    registered_model_name: str | None = None,
    registry: Registry | None = None,
    pip_requirements: list[str] | None = None,
    tags: dict[str, str] | None = None,
    await_registration_for: int = 300,
) -> Any:
    """Log ``module`` as an MLflow model (in the active run, else a new one); register it.

    The logged model and, with ``registered_model_name``, the new model version are tagged
    ``modreg.ref``, ``modreg.digest`` and ``modreg.kind`` (and the version described by
    them), so a registered model can be traced back to the exact module it serves.

    Args:
        module: a :class:`~modreg.Module` or a built module (see :func:`save_model`).
        name: the model's name in the run.
        registered_model_name: create a version of this registered model.
        registry: where a hybrid's parts are pulled from.
        pip_requirements: the serving environment (default: modreg, torch, numpy pins).
        tags: more tags for the logged model.

    Returns:
        ``mlflow.models.model.ModelInfo`` (``registered_model_version`` when registered).

    Raises:
        ConfigError: the tracking or registry server refused the model.
    """
    from modreg.tracking import import_mlflow

    import_mlflow()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    from modreg.mlflow._flavor import FLAVOR_NAME

    try:
        info = Model.log(
            artifact_path=None,
            name=name,
            flavor=sys.modules["modreg.mlflow"],
            registered_model_name=registered_model_name,
            await_registration_for=await_registration_for,
            tags=tags,
            module=module,
            registry=registry,
            pip_requirements=pip_requirements,
        )
        config = info.flavors[FLAVOR_NAME]
        identity = {
            "modreg.ref": config["module"],
            "modreg.digest": config["digest"],
            "modreg.kind": config["kind"],
        }
        client = MlflowClient()
        client.set_logged_model_tags(info.model_id, identity)
        if registered_model_name is not None:
            version = str(info.registered_model_version)
            for key, value in identity.items():
                client.set_model_version_tag(registered_model_name, version, key, value)
            # what `mlflow ui` shows in the version list: the module it serves
            description = f"modreg module {config['module']} ({config['digest']})"
            client.update_model_version(registered_model_name, version, description=description)
    except MlflowException as exc:
        raise ConfigError(f"MLflow refused to log the model {name!r}: {exc.message}") from exc
    return info
