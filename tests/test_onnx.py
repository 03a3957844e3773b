"""ONNX export of every kind, run by onnxruntime, against torch on the same inputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import modreg
from modreg.errors import ConfigError
from modreg.registry import Registry
from modreg.runtime._export import ONNX_OPSET, example_inputs
from tests._mlflow_helpers import ball_hybrid, library

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
