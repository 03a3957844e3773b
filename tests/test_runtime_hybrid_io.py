"""Hybrids as modules (publish -> pull -> identical outputs), lockfiles, weights, export."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

import modreg
from modreg.errors import IntegrityError, InvalidWeights
from modreg.registry import Registry
from modreg.runtime import Block, Hybrid, build, export, load_export
from tests._runtime_helpers import MODULES, VEC3_A, VEC3_V, published

V = {"unit": "m/s", "shape": [3]}


def _trained_ball(registry: Registry, tmp_path: Path) -> modreg.HybridNet:
    """Pull drag, add a residual block (saved and published), train one step."""
    (drag,) = published(registry, MODULES / "drag")
    torch.manual_seed(0)
    block = Block.mlp({"v": VEC3_V}, {"a": VEC3_A}, hidden=[8], normalize=True)
    registry.publish(block.save(tmp_path / "residual", name="test/ball-residual").path)
    h = Hybrid(inputs={"v": VEC3_V}, outputs={"a": VEC3_A}, name="test/ball", version="1.0.0")
    m = h.constant("m", 0.145, unit="kg", trainable=True)
    g = h.constant("g", [0.0, 0.0, -9.81], unit="m/s**2")
    d = h.add("drag", drag, v="v", rho=1.2, trainable=True)
    h.output("a", g + d.F / m + h.add("residual", block, v="v").a)
    net = h.build()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    net({"v": torch.randn(16, 3) * 20})["a"].pow(2).mean().backward()
    optimizer.step()
    return net


def test_publish_pull_rebuilds_identical_outputs(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    net = _trained_ball(registry, tmp_path)
    module = net.save(tmp_path / "ball")
    assert module.manifest.requires == {
        "physics/drag": ">=1.0.0,<2",
        "test/ball-residual": ">=0.1.0,<0.2",
    }
    assert {f.path for f in module.files} == {"modreg.yaml", "modreg.lock", "weights.safetensors"}
    registry.publish(module.path)
    rebuilt = build(registry.pull("test/ball@1.0.0"), registry=registry)
    v = torch.randn(32, 3) * 20
    assert torch.equal(rebuilt({"v": v})["a"], net({"v": v})["a"])
    assert rebuilt.is_trainable("drag") and rebuilt.is_trainable("residual")
    assert rebuilt.source == net.source


def test_lock_digest_mismatch_is_refused(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    module = _trained_ball(registry, tmp_path).save(tmp_path / "ball")
    tampered = tmp_path / "tampered"
    shutil.copytree(module.path, tampered)
    lock = json.loads((tampered / "modreg.lock").read_text())
    lock["modules"]["physics/drag"]["digest"] = "sha256:" + "0" * 64
    (tampered / "modreg.lock").write_text(json.dumps(lock))
    pin = r"pins physics/drag@1\.0\.0 with digest sha256:0000"
    with pytest.raises(IntegrityError, match=pin):  # publish checks it against the parts
        registry.publish(tampered)
    other = Registry(tmp_path / "other")  # without the parts, publish cannot tell...
    other.publish(tampered)
    for part in (MODULES / "drag", tmp_path / "residual"):
        other.publish(part)
    with pytest.raises(IntegrityError, match=pin):  # ...and the build refuses it
        build(other.pull("test/ball"), registry=other)


def test_weights_for_a_frozen_constant_are_refused(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    net = _trained_ball(registry, tmp_path)
    with pytest.raises(InvalidWeights, match="constant 'A' is frozen"):
        net.load_trainable_state({"parts.drag.const_A": torch.tensor(1.0)})
    with pytest.raises(InvalidWeights, match="cannot take"):
        net.load_trainable_state({"const_g": torch.zeros(3)})


def test_frozen_unchanged_parts_are_not_duplicated(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    (drag,) = published(registry, MODULES / "drag")
    h = Hybrid(
        inputs={"v": VEC3_V}, outputs={"F": {"unit": "N", "shape": [3]}}, name="test/drag-only"
    )
    h.output("F", h.add("drag", drag, v="v", rho=1.2).F)
    module = h.build().save(tmp_path / "drag-only")
    assert module.manifest.weights is None and module.manifest.graph is not None
    registry.publish(module.path)
    rebuilt = build(registry.pull("test/drag-only"), registry=registry)
    assert not rebuilt.is_trainable("drag")


def test_network_block_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    block = Block.resmlp(
        {"v": V, "rho": "kg/m**3"}, {"F": {"unit": "N", "shape": [3]}, "P": "W"}, width=8
    )
    module = block.save(tmp_path / "res", name="test/res", version="0.2.0")
    loaded = build(module)
    inputs = {"v": torch.randn(5, 3), "rho": torch.rand(5)}
    for port in ("F", "P"):
        assert torch.equal(loaded(inputs)[port], block(inputs)[port])
    assert loaded(inputs)["P"].shape == (5,)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.pop("layers.0.bias"), "lack tensors \\['layers.0.bias'\\]"),
        (lambda t: t.update(extra=torch.zeros(1)), "cannot take"),
        (lambda t: t.update({"layers.0.bias": torch.zeros(7)}), "shape \\[7\\], expected \\[32\\]"),
        (
            lambda t: t.update({"in_scale": t["in_scale"].double()}),
            "is torch.float64 but the module holds",
        ),
    ],
)
def test_network_weights_load_strictly(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    from safetensors.torch import load_file, save_file

    from modreg.module import Module

    target = tmp_path / "mlp"
    shutil.copytree(MODULES / "drag-mlp", target)
    tensors = load_file(str(target / "weights.safetensors"))
    edit(tensors)
    save_file(tensors, str(target / "weights.safetensors"))
    # The published module's record, pointing at the edited copy of its files.
    module = dataclasses.replace(Module.from_dir(MODULES / "drag-mlp"), path=target)
    with pytest.raises(InvalidWeights, match=message):
        Block.load(module)


@pytest.mark.parametrize(("fmt", "suffix"), [("torchscript", ".pt"), ("export", ".pt2")])
def test_export_round_trip(tmp_path: Path, fmt: str, suffix: str) -> None:
    registry = Registry(tmp_path / "registry")
    net = _trained_ball(registry, tmp_path)
    path = export(net, tmp_path / f"ball{suffix}", format=fmt)  # type: ignore[arg-type]
    loaded = load_export(path)
    for batch in (3, 17):
        v = torch.randn(batch, 3) * 20
        torch.testing.assert_close(loaded({"v": v})["a"], net({"v": v})["a"], rtol=0, atol=0)
    assert net.check_inputs  # export switched the check off only while exporting
