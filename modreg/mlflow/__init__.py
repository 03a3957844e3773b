"""MLflow flavor for modreg modules: log, register, load and serve them as MLflow models.

Any module kind (equation, network, hybrid), pulled or built, becomes an MLflow model whose
data is the module's own files (nothing pickled), verified by digest on every load, with a
signature of its output ports and every port's unit, shape and range in the flavor's
metadata (requests are checked against the ports by the model itself, in any of MLflow's
request formats)::

    import modreg, modreg.mlflow
    drag = modreg.pull("physics/drag@~=1.1")
    info = modreg.mlflow.log_model(drag, name="drag", registered_model_name="physics-drag")
    model = mlflow.pyfunc.load_model("models:/physics-drag/1")
    model.predict({"v": [[10.0, 0.0, 5.0]], "rho": [1.2]})   # {"F": array([[...]])}

and ``mlflow models serve -m models:/physics-drag/1 --env-manager local`` serves it.
mlflow is imported only inside these functions (``import modreg.mlflow`` stays light).
"""

from __future__ import annotations

from modreg.mlflow._flavor import (
    FLAVOR_NAME,
    _load_pyfunc,
    get_default_pip_requirements,
    load_model,
    save_model,
)
from modreg.mlflow._log import log_model
from modreg.mlflow._pyfunc import ModregModel

__all__ = [
    "FLAVOR_NAME",
    "ModregModel",
    "_load_pyfunc",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]
