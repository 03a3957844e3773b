"""ONNX export (``torch.onnx.export``, dynamo) and an onnxruntime runner with modreg's calls.

The model is exported with its one argument, the dict of inputs, passed by keyword: the
exporter reads a trailing dict in ``args`` as keyword arguments, so ``(inputs,)`` would not
reach ``forward(inputs)``. Each port becomes a graph input or output of its own name; the
batch axis is a symbolic dimension ``batch``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from modreg.errors import InputError
from modreg.runtime._base import Executable

__all__ = ["OnnxRunner", "onnx_export"]


def _require(name: str) -> None:
    from modreg._extras import require_extra

    require_extra("onnx", "format='onnx'", name)


def onnx_export(
    model: Executable, target: Path, example: Mapping[str, Tensor] | None, *, opset: int
) -> None:
    """Write ``model`` (in eval mode, input checks off while tracing) as an ONNX file."""
    from modreg.runtime._export import example_inputs

    _require("onnxscript")
    _require("onnx")
    inputs = dict(example) if example is not None else example_inputs(model.interface.inputs)
    batch = torch.export.Dim("batch", min=1)
    dynamic = {"inputs": {name: {0: batch} for name in inputs}}
    checks = model.check_inputs
    model.check_inputs = False
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" notices
    try:
        with warnings.catch_warnings():
            # The exporter's own deprecation and axis-renaming notices, not the user's doing.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (),
                str(target),
                kwargs={"inputs": inputs},
                dynamic_shapes=dynamic,
                input_names=list(inputs),
                output_names=list(model.interface.outputs),
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
    finally:
        model.check_inputs = checks
        exporter_log.setLevel(level)


class OnnxRunner:
    """An ONNX file run by onnxruntime on the CPU: ``runner({"v": tensor}) -> {"F": tensor}``."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        _require("onnxruntime")
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run_numpy(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The same call on numpy arrays (no torch conversion: what a server would do)."""
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise InputError(f"ONNX model inputs {missing} are missing: pass {self.input_names}")
        feed = {name: inputs[name] for name in self.input_names}
        return dict(zip(self.output_names, self.session.run(None, feed), strict=True))

    def __call__(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        arrays = {name: value.detach().cpu().numpy() for name, value in inputs.items()}
        return {name: torch.from_numpy(out) for name, out in self.run_numpy(arrays).items()}
