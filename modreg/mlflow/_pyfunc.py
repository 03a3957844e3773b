"""The loaded model: requests checked against the ports, then one no-grad torch call.

Bad requests (a missing port, a wrong shape, a value outside a declared range) raise
``MlflowException`` with ``INVALID_PARAMETER_VALUE``: the scoring server of
``mlflow models serve`` answers those with HTTP 400 and the message, not a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modreg.errors import InputError
from modreg.mlflow._signature import to_arrays, to_frame
from modreg.spec.manifest import Port

if TYPE_CHECKING:
    from modreg.module import Module

__all__ = ["ModregModel"]


class ModregModel:
    """A modreg module served through MLflow: ``predict`` takes and returns ports by name."""

    def __init__(
        self, net: Any, module: Module, inputs: Mapping[str, Port], outputs: Mapping[str, Port]
    ) -> None:
        self.net = net
        self.module = module
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)

    @property
    def ref(self) -> str:
        return self.module.ref

    @property
    def digest(self) -> str:
        return self.module.digest

    def __repr__(self) -> str:
        return f"ModregModel({self.ref!r}, digest={self.digest[:19]!r})"

    def get_raw_model(self) -> Any:
        """The built torch module (what ``PyFuncModel.get_raw_model`` hands out)."""
        return self.net

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Outputs by port name: a dict of arrays for a mapping, a DataFrame for a DataFrame.

        Raises:
            MlflowException: (``INVALID_PARAMETER_VALUE``) a request the ports do not admit.
        """
        try:
            arrays = to_arrays(model_input, self.inputs)
        except InputError as exc:
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            raise MlflowException(f"{self.ref}: {exc}", error_code=INVALID_PARAMETER_VALUE) from exc
        outputs = self._run(arrays)
        return to_frame(outputs, self.outputs) if hasattr(model_input, "columns") else outputs

    def _run(self, arrays: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        import torch

        tensors = {
            name: torch.from_numpy(np.ascontiguousarray(array)).to(getattr(torch, port.dtype))
            for name, array in arrays.items()
            for port in (self.inputs[name],)
        }
        with torch.no_grad():
            result = self.net(tensors)
        outputs = {}
        for name in self.outputs:
            tensor = result[name].detach()
            outputs[name] = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
        return outputs
