"""MLflow tracking of pipeline runs (mlflow is imported lazily, on first use).

Example:
    >>> with Tracker("showcase", "train", uri="sqlite:///mlflow.db") as run:  # doctest: +SKIP
    ...     run.log_params({"lr": 1e-3})
    ...     run.log_metrics({"rmse": 0.1})
    ...     run.run_id
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from modreg.errors import ConfigError, PipelineError

__all__ = ["DEFAULT_TRACKING_URI", "Tracker", "import_mlflow"]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


class Tracker:
    """One MLflow run: params, metrics and artifacts; errors surface as modreg errors."""

    def __init__(
        self,
        experiment: str,
        run_name: str,
        *,
        uri: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.experiment = experiment
        self.run_name = run_name
        self.uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
        self.tags = dict(tags or {})
        self.run_id = ""

    def __enter__(self) -> Tracker:
        mlflow = _mlflow()
        try:
            mlflow.set_tracking_uri(self.uri)
            mlflow.set_experiment(self.experiment)
            run = mlflow.start_run(run_name=self.run_name, tags=self.tags)
        except Exception as exc:  # mlflow raises many unrelated types; translate at the boundary
            raise ConfigError(
                f"cannot open MLflow tracking at {self.uri!r}: {exc} "
                "(set MLFLOW_TRACKING_URI to a writable store, e.g. sqlite:///mlflow.db)"
            ) from exc
        self.run_id = run.info.run_id
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _mlflow().end_run(status="FINISHED" if exc is None else "FAILED")

    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> None:
        """Log (flattened) params; nested mappings become ``a.b`` keys."""
        flat = _flatten(params, prefix)
        self._call("log_params", {k: str(v)[:500] for k, v in flat.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._call("log_metrics", {k: float(v) for k, v in metrics.items()}, step=step)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        self._call("log_artifact", str(path), artifact_path=folder)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._call("set_tags", dict(tags))

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        try:
            getattr(_mlflow(), method)(*args, **kwargs)
        except Exception as exc:
            raise PipelineError(f"MLflow {method} failed for run {self.run_id}: {exc}") from exc


def _flatten(params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def import_mlflow() -> Any:
    """``mlflow`` (with ``mlflow.pyfunc`` and ``mlflow.models``), imported quietly.

    mlflow warns about its own type-hint tables at import and logs every database migration;
    neither is the caller's business. No progress bars on artifact transfers either.

    Raises:
        ConfigError: mlflow is not installed (the message names the ``mlflow`` extra).
    """
    from modreg._extras import needs_extra

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    with warnings.catch_warnings(), needs_extra("mlflow", "MLflow (tracking, modreg.mlflow)"):
        warnings.simplefilter("ignore")
        import mlflow
        import mlflow.models
        import mlflow.pyfunc
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return mlflow


_mlflow = import_mlflow
