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

  Writing an ONNX file proves little: onnxruntime's CPU provider lacks kernels for many ops
  at some dtypes (``Acos``, ``Sinh``, ``Tan`` ... at float64; nearly everything at bfloat16).
  So the file is written to a scratch folder beside ``path`` and must load in onnxruntime and
  run on inputs drawn inside the declared ranges, agreeing with torch, before it is moved to
  ``path``; otherwise :class:`~modreg.errors.ExportError` names what onnxruntime refused and
  nothing is written. Which ops fail is what onnxruntime reports, not a table kept here, so
  new grammar functions are covered as they come. bfloat16 is refused up front.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from modreg.errors import ExportError, InputError
from modreg.runtime._base import Executable
from modreg.spec.manifest import Port

__all__ = ["ONNX_OPSET", "example_inputs", "export", "load_export"]

Format = Literal["torchscript", "export", "onnx"]
ONNX_OPSET = 18  # onnxruntime >= 1.14 runs it; every op modreg generates exists there
_JIT_DEPRECATED = r".*torch\.jit\.(script|load|save)` is deprecated"
# The exported file is run at these batch sizes (traced at 8: the batch axis must be dynamic).
_CHECK_BATCHES = (1, 5)
_FLOAT32_FIX = "export a float32 module (float32 ports and tensors) or use format='torchscript'"
_OTHER_FIX = "use format='torchscript' or format='export'"
# What onnxruntime's messages say: "... implementation for Tan(7) node with name 'node_tan'"
# (no kernel) and "Type 'tensor(bfloat16)' of input parameter (x) of operator (Sin) in node
# (node_sin) is invalid" (the op's schema has no such type).
_NO_KERNEL = re.compile(r"implementation for (?P<op>\w+)\(\d+\) node with name '(?P<node>[^']*)'")
_BAD_TYPE = re.compile(
    r"tensor\((?P<dtype>\w+)\).*operator \((?P<op>\w+)\) in node \((?P<node>[^)]*)\)"
)
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (Load model from .* failed:)?")


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
        ExportError: ``format="onnx"`` for a module onnxruntime cannot load, run or agree
            with torch on (nothing is written then).
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
            _onnx_export_checked(model, target, example)
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


def _onnx_export_checked(
    model: Executable, target: Path, example: Mapping[str, Tensor] | None
) -> None:
    """Export to a scratch folder beside ``target``; move the file in only once it runs."""
    from modreg.runtime._onnx import _require, onnx_export

    _refuse_bfloat16(model)
    _require("onnxruntime")  # the check needs it: asked before anything is traced
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as scratch:
        draft = Path(scratch) / target.name
        try:
            onnx_export(model, draft, example, opset=ONNX_OPSET)
        except torch.onnx.OnnxExporterError as exc:
            first = str(exc).strip().partition("\n")[0]
            raise ExportError(
                f"{model.label}: torch cannot export it to ONNX ({first}): {_OTHER_FIX}"
            ) from exc
        _check_onnx_runs(model, draft)
        for written in Path(scratch).iterdir():  # the file, and its weights if held apart
            os.replace(written, target.parent / written.name)


def _refuse_bfloat16(model: Executable) -> None:
    """onnxruntime's CPU provider has no bfloat16 kernel for most ops, nor numpy a bfloat16."""
    ports = {**model.interface.inputs, **model.interface.outputs}
    where = [f"port {name!r}" for name, port in ports.items() if port.dtype == "bfloat16"]
    where += [f"tensor {name!r}" for name, t in _tensors(model) if t.dtype == torch.bfloat16]
    if where:
        raise ExportError(
            f"{model.label}: {where[0]} is bfloat16, which onnxruntime cannot run (no CPU "
            f"kernels for most ops): {_FLOAT32_FIX}"
        )


def _tensors(model: Executable) -> Iterator[tuple[str, Tensor]]:
    yield from model.named_parameters()
    yield from model.named_buffers()


def _check_onnx_runs(model: Executable, draft: Path) -> None:
    """Raise :class:`ExportError` unless onnxruntime loads ``draft`` and agrees with torch."""
    from modreg.runtime._onnx import OnnxRunner

    failures = _onnxruntime_errors()
    try:
        runner = OnnxRunner(draft, threads=1)
    except failures as exc:
        raise ExportError(_refusal(model, draft, "cannot load", exc)) from exc
    for batch in _CHECK_BATCHES:
        inputs = example_inputs(model.interface.inputs, batch, seed=batch)
        with torch.no_grad():
            want = model(inputs)
        try:
            got = runner(inputs)
        except failures as exc:
            raise ExportError(_refusal(model, draft, "cannot run", exc)) from exc
        for port, value in want.items():
            _check_parity(model.label, port, got.get(port), value)


def _onnxruntime_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's exception types (one per status code), and the Python-side ones."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state  # type: ignore[import-untyped]

    native = [v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception)]
    return (*native, RuntimeError, TypeError, ValueError)


def _refusal(model: Executable, draft: Path, stage: str, exc: Exception) -> str:
    """One line: what onnxruntime refused (the op and dtype where it says), and the fix."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    detail = _ORT_PREFIX.sub("", str(exc).strip().partition("\n")[0]).strip()
    found = _NO_KERNEL.search(detail) or _BAD_TYPE.search(detail)
    dtype = found.groupdict().get("dtype") if found else None
    if found and dtype is None:
        dtype = _node_input_dtype(draft, found["node"])
    if dtype is None:
        dtype = "/".join(sorted({p.dtype for p in model.interface.inputs.values()}))
    what = f"op {found['op']} at {dtype}" if found else dtype
    fix = _OTHER_FIX if dtype == "float32" else _FLOAT32_FIX
    return (
        f"{model.label}: onnxruntime {ort.__version__} {stage} its ONNX export ({what}: "
        f"{detail}): {fix}"
    )


def _node_input_dtype(draft: Path, node_name: str) -> str | None:
    """The dtype (``float64`` ...) of the first input of the graph node ``node_name``."""
    import onnx

    graph = onnx.load(str(draft), load_external_data=False).graph
    node = next((n for n in graph.node if n.name == node_name and n.input), None)
    if node is None:
        return None
    values = [*graph.input, *graph.value_info, *graph.output]
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    types.update({t.name: t.data_type for t in graph.initializer})
    if node.input[0] not in types:
        return None
    return str(onnx.helper.tensor_dtype_to_np_dtype(types[node.input[0]]).name)


def _check_parity(label: str, port: str, got: Tensor | None, want: Tensor) -> None:
    """onnxruntime's ``port`` matches torch's: dtype, shape, and values to √eps of the scale."""
    if got is None or got.dtype != want.dtype or got.shape != want.shape:
        seen = "nothing" if got is None else f"{got.dtype} {list(got.shape)}"
        raise ExportError(
            f"{label}: onnxruntime's output {port!r} is {seen}, torch's is {want.dtype} "
            f"{list(want.shape)}: {_OTHER_FIX}"
        )
    reference, actual = want.double(), got.double()
    finite = reference[reference.isfinite()]
    rtol = torch.finfo(want.dtype).eps ** 0.5
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    atol = rtol * scale + torch.finfo(want.dtype).tiny
    if not torch.allclose(actual, reference, rtol=rtol, atol=atol, equal_nan=True):
        error = float((actual - reference).abs().nan_to_num(nan=float("inf")).max())
        raise ExportError(
            f"{label}: onnxruntime's output {port!r} differs from torch's by up to {error:.3g} "
            f"(tolerance {atol:.3g}) on inputs inside the declared ranges: {_OTHER_FIX}"
        )


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
