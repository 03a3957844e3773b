"""ONNX export of every kind, run by onnxruntime, against torch on the same inputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import torch

import modreg
from modreg.errors import ConfigError, ExportError
from modreg.module import Module
from modreg.registry import Registry
from modreg.runtime import Block
from modreg.runtime._export import ONNX_OPSET, example_inputs
from modreg.spec.grammar import GRAMMAR, GrammarFunction
from tests._mlflow_helpers import ball_hybrid, library
from tests._runtime_helpers import equation

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture
def nets(tmp_path: Path) -> dict[str, Any]:
    registry = Registry(tmp_path / "registry")
    modules = library(registry)
    return {
        "equation": modreg.build(modules["drag"]),
        "network": modreg.build(modules["drag-mlp"]),
        "hybrid": ball_hybrid(registry, modules["drag"], modules["drag-mlp"]),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["equation", "network", "hybrid"])
def test_onnx_runtime_matches_torch_at_any_batch(
    kind: str, nets: dict[str, Any], tmp_path: Path
) -> None:
    net = nets[kind]
    path = modreg.export(net, tmp_path / f"{kind}.onnx", format="onnx")
    runner = modreg.load_export(path)
    for batch in (1, 257):  # traced at 8: the batch axis is dynamic
        inputs = example_inputs(net.interface.inputs, batch, seed=batch)
        with torch.no_grad():
            want = net(inputs)
        got = runner(inputs)
        assert got.keys() == want.keys()
        for port, value in want.items():
            assert got[port].shape == value.shape
            scale = float(value.abs().max())
            np.testing.assert_allclose(got[port].numpy(), value.numpy(), atol=1e-6 * scale)
    assert net.check_inputs  # the input checks are back on after tracing


def test_graph_ports_are_named_and_batched(nets: dict[str, Any], tmp_path: Path) -> None:
    path = modreg.export(nets["equation"], tmp_path / "drag.onnx", format="onnx")
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    assert {o.domain: o.version for o in graph.opset_import}[""] == ONNX_OPSET
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in graph.graph.input
    }
    assert dims == {"v": ["batch", 3], "rho": ["batch"]}
    assert [o.name for o in graph.graph.output] == ["F"]


def test_onnx_without_its_packages_names_the_extra(
    nets: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name)
    )
    with pytest.raises(ConfigError, match=r"pip install 'modreg\[onnx\]' \(onnxscript is missing"):
        modreg.export(nets["equation"], tmp_path / "x.onnx", format="onnx")
    assert not (tmp_path / "x.onnx").exists()


def _grammar_equation(directory: Path, entry: GrammarFunction, dtype: str) -> Module:
    """``y = f(x)`` (or ``f(x, w)``) at ``dtype``, its inputs ranging inside ``f``'s domain."""
    low, high = max(entry.domain[0], -2.0), min(entry.domain[1], 2.0)
    pad = 0.05 * (high - low)  # clear of the bounds, where log and acos leave the reals
    vector = entry.numpy == ""  # the table's vector functions (norm, dot) take [3] ports
    port = {"shape": [3] if vector else [], "dtype": dtype, "range": [low + pad, high - pad]}
    names = ["x", "w"][: entry.arity]
    call = f"{entry.name}({', '.join(names)})"
    return equation(
        directory, f"test/{entry.name}", dict.fromkeys(names, port), {"y": {"dtype": dtype}},
        {"y": call},
    )  # fmt: skip


def _refusal(net: Any, target: Path) -> ExportError | None:
    """Export ``net`` to ``target`` as ONNX: None when it was written, else the refusal."""
    try:
        modreg.export(net, target, format="onnx")
    except ExportError as exc:
        return exc
    return None


def _assert_refused(exc: ExportError, target: Path) -> None:
    """One line naming the fix, and nothing written: no file, no scratch folder."""
    message = str(exc)
    assert "\n" not in message
    assert "format='torchscript'" in message
    assert not target.exists()
    left = list(target.parent.iterdir()) if target.parent.exists() else []
    assert left == [], "the refused export left files"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("entry", GRAMMAR, ids=lambda f: f.name)
def test_every_grammar_function_exports_runnable_or_is_refused(
    entry: GrammarFunction, dtype: str, tmp_path: Path
) -> None:
    """Rule: what export writes, onnxruntime loads and runs like torch; else export refuses."""
    net = modreg.build(_grammar_equation(tmp_path / "module", entry, dtype))
    target = tmp_path / "out" / f"{entry.name}.onnx"
    refused = _refusal(net, target)
    if refused is not None:
        _assert_refused(refused, target)
        assert dtype in str(refused)
        return
    runner = modreg.load_export(target)
    inputs = example_inputs(net.interface.inputs, 5, seed=3)
    with torch.no_grad():
        want = net(inputs)["y"]
    got = runner(inputs)["y"]
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol = 1e-10 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=rtol, atol=rtol)


def _onnxruntime_lacks(op: str) -> bool:
    """Whether onnxruntime's CPU provider refuses a one-node float64 ``op`` graph (asked live)."""
    import onnxruntime as ort

    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node(op, ["x"], ["y"])], "probe",
        [tensor("x", onnx.TensorProto.DOUBLE, [1])], [tensor("y", onnx.TensorProto.DOUBLE, [1])],
    )  # fmt: skip
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", ONNX_OPSET)])
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime's own error types, one per status code
        return True
    return False


def test_refusal_names_the_op_and_dtype_onnxruntime_lacks(tmp_path: Path) -> None:
    if not _onnxruntime_lacks("Acos"):
        pytest.skip("this onnxruntime has a float64 Acos kernel: nothing to refuse")
    acos = next(f for f in GRAMMAR if f.name == "acos")
    net = modreg.build(_grammar_equation(tmp_path / "module", acos, "float64"))
    target = tmp_path / "out" / "acos.onnx"
    refused = _refusal(net, target)
    assert refused is not None, "export wrote a file onnxruntime cannot load"
    assert "op Acos at float64" in str(refused)
    assert "export a float32 module" in str(refused)
    _assert_refused(refused, target)


def test_a_refused_export_keeps_the_file_it_would_replace(tmp_path: Path) -> None:
    if not _onnxruntime_lacks("Tan"):
        pytest.skip("this onnxruntime has a float64 Tan kernel: nothing to refuse")
    tan = next(f for f in GRAMMAR if f.name == "tan")
    net = modreg.build(_grammar_equation(tmp_path / "module", tan, "float64"))
    target = tmp_path / "out" / "tan.onnx"
    target.parent.mkdir()
    target.write_bytes(b"an earlier export")
    assert _refusal(net, target) is not None, "export wrote a file onnxruntime cannot load"
    assert target.read_bytes() == b"an earlier export"
    assert [p.name for p in target.parent.iterdir()] == ["tan.onnx"]


def _bfloat16_net(kind: Literal["equation", "network", "cast"], directory: Path) -> Any:
    port = {"shape": [3], "dtype": "bfloat16", "range": [-1.0, 1.0]}
    if kind == "equation":
        return modreg.build(equation(directory, "test/bf16", {"x": port}, {"y": port}, {"y": "x"}))
    if kind == "network":  # bfloat16 ports
        return Block.mlp({"x": port}, {"y": port}, hidden=[4])
    # float32 ports, its tensors cast to bfloat16 afterwards
    return Block.mlp({"x": {"shape": [3]}}, {"y": {"shape": [3]}}, hidden=[4]).to(torch.bfloat16)


@pytest.mark.parametrize("kind", ["equation", "network", "cast"])
def test_bfloat16_is_refused_before_exporting(
    kind: Literal["equation", "network", "cast"], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = _bfloat16_net(kind, tmp_path / "module")

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch.onnx.export ran for a module it must refuse up front")

    monkeypatch.setattr(torch.onnx, "export", never)
    target = tmp_path / "out" / "bf16.onnx"
    with pytest.raises(ExportError, match="bfloat16") as caught:
        modreg.export(net, target, format="onnx")
    assert "export a float32 module" in str(caught.value)
    _assert_refused(caught.value, target)
    assert net.training  # export restores the mode even when it refuses


def test_onnx_without_onnxruntime_names_the_extra(
    nets: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs the file in onnxruntime, so exporting needs it (asked before writing)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    with pytest.raises(ConfigError, match=r"pip install 'modreg\[onnx\]' \(onnxruntime is missing"):
        modreg.export(nets["equation"], tmp_path / "x.onnx", format="onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_an_export_onnxruntime_disagrees_with_is_refused(
    nets: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check keeps torch parity: a runner that is off by 1% is caught, nothing written."""
    from modreg.runtime._onnx import OnnxRunner

    real = OnnxRunner.__call__
    monkeypatch.setattr(
        OnnxRunner, "__call__", lambda self, x: {k: v * 1.01 for k, v in real(self, x).items()}
    )
    target = tmp_path / "out" / "drag.onnx"
    with pytest.raises(ExportError, match="output 'F' differs from torch's by up to") as caught:
        modreg.export(nets["equation"], target, format="onnx")
    _assert_refused(caught.value, target)


def test_an_export_onnxruntime_cannot_run_is_refused(
    nets: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    from modreg.runtime._onnx import OnnxRunner

    def fail(self: OnnxRunner, inputs: Any) -> Any:
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code running Foo node.")

    monkeypatch.setattr(OnnxRunner, "run_numpy", fail)
    target = tmp_path / "out" / "drag.onnx"
    with pytest.raises(
        ExportError, match=r"cannot run its ONNX export \(float32: Non-zero"
    ) as caught:
        modreg.export(nets["equation"], target, format="onnx")
    assert "use format='torchscript' or format='export'" in str(caught.value)
    _assert_refused(caught.value, target)
