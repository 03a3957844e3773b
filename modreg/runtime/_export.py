"""Export a built module for deployment where modreg is not installed.

Three formats; the first two load with torch alone, the third with any ONNX runtime:

- ``"torchscript"`` (``.pt``): ``torch.jit.script`` of the module; the input checks stay in
  (a NaN input raises ``torch.jit.Error`` naming the port). Load with ``torch.jit.load``.
  TorchScript is deprecated in torch 2.13 but still the simplest artefact for C++ or mobile;
  modreg silences only that deprecation notice while scripting.
- ``"export"`` (``.pt2``): ``torch.export`` with a dynamic batch dimension. Data-dependent
  checks cannot be exported, so the NaN check is left out; shapes are still guarded by the
  exported program. Load with ``torch.export.load(path).module()``.

- ``"onnx"`` (``.onnx``): ``torch.onnx.export`` (the dynamo exporter, which needs
  ``onnxscript``: ``pip install 'modreg[onnx]'``) at opset :data:`ONNX_OPSET`, one graph
  input per input port and one output per output port, named after the ports, with a
  dynamic batch axis. As with ``torch.export`` the NaN check is left out. Run it with
  ``onnxruntime.InferenceSession(path).run(None, {"v": array, ...})`` or, from Python,
  :func:`load_export` (a callable on dicts of tensors, like the other formats).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from modreg.errors import InputError
from modreg.runtime._base import Executable
from modreg.spec.manifest import Port

__all__ = ["ONNX_OPSET", "example_inputs", "export", "load_export"]

Format = Literal["torchscript", "export", "onnx"]
ONNX_OPSET = 18  # onnxruntime >= 1.14 runs it; every op modreg generates exists there
_JIT_DEPRECATED = r".*torch\.jit\.(script|load|save)` is deprecated"


def example_inputs(
    ports: Mapping[str, Port], batch: int = 8, *, seed: int = 0
) -> dict[str, Tensor]:
    """Random tensors for ``ports``: uniform in each port's range (standard normal without one)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, port in ports.items():
        dtype = getattr(torch, port.dtype)
        sample = torch.rand((batch, *port.shape), generator=generator, dtype=torch.float64)
        if port.range is not None:
            low, high = port.range
            sample = low + (high - low) * sample
        else:
            sample = torch.randn((batch, *port.shape), generator=generator, dtype=torch.float64)
        tensors[name] = sample.to(dtype)
    return tensors


def script(model: Executable) -> torch.jit.ScriptModule:
    """``torch.jit.script(model)``, without torch 2.13's deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _JIT_DEPRECATED, DeprecationWarning)
        scripted: torch.jit.ScriptModule = torch.jit.script(model)
    return scripted


def export(
    model: Executable,
    path: str | Path,
    *,
    format: Format = "torchscript",
    example: Mapping[str, Tensor] | None = None,
) -> Path:
    """Write ``model`` as TorchScript (``.pt``), ``torch.export`` (``.pt2``) or ONNX (``.onnx``).

    Args:
        model: a built module (``modreg.build`` / ``Hybrid.build``).
        path: the file to write.
        format: ``"torchscript"``, ``"export"`` or ``"onnx"``.
        example: example inputs for tracing (default: random, batch 8).

    Raises:
        InputError: an unknown format.
        ConfigError: ``format="onnx"`` without the ``onnx`` extra installed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        if format == "torchscript":
            script(model).save(str(target))
        elif format == "export":
            _torch_export(model, target, example)
        elif format == "onnx":
            from modreg.runtime._onnx import onnx_export

            onnx_export(model, target, example, opset=ONNX_OPSET)
        else:
            raise InputError(
                f"unknown export format {format!r}: use 'torchscript', 'export' or 'onnx'"
            )
    finally:
        model.train(was_training)
    return target


def _torch_export(model: Executable, target: Path, example: Mapping[str, Tensor] | None) -> None:
    inputs = dict(example) if example is not None else example_inputs(model.interface.inputs)
    batch = torch.export.Dim("batch", min=1)
    dynamic = ({name: {0: batch} for name in inputs},)
    checks = model.check_inputs
    model.check_inputs = False
    try:
        program = torch.export.export(model, (inputs,), dynamic_shapes=dynamic)
    finally:
        model.check_inputs = checks
    torch.export.save(program, str(target))


def load_export(path: str | Path) -> Callable[[dict[str, Tensor]], dict[str, Tensor]]:
    """Load an exported model (``.pt2``: torch.export, ``.onnx``: onnxruntime, else TorchScript).

    Every kind is a callable from a dict of tensors by port name to a dict of tensors.
    """
    target = Path(path)
    loaded: Any
    if target.suffix == ".onnx":
        from modreg.runtime._onnx import OnnxRunner

        loaded = OnnxRunner(target)
    elif target.suffix == ".pt2":
        loaded = torch.export.load(str(target)).module()
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _JIT_DEPRECATED, DeprecationWarning)
            loaded = torch.jit.load(str(target))  # type: ignore[no-untyped-call]
    return loaded  # type: ignore[no-any-return]
