"""Small module directories for the runtime tests (equations written as manifests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modreg.module import Module
from modreg.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "modules"
VEC3_V = {"unit": "m/s", "shape": [3], "range": [-60.0, 60.0]}
VEC3_A = {"unit": "m/s**2", "shape": [3]}


def write_module(directory: Path, **fields: Any) -> Path:
    """Write ``modreg.yaml`` from keyword fields (name, version, kind, inputs, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {"version": "1.0.0", "kind": "equation", **fields}
    (directory / "modreg.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def equation(
    directory: Path,
    name: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    equation: dict[str, str],
    constants: dict[str, Any] | None = None,
) -> Module:
    """An equation module directory, validated."""
    write_module(
        directory, name=name, inputs=inputs, outputs=outputs, equation=equation,
        constants=constants or {},
    )  # fmt: skip
    return Module.from_dir(directory)


def uniform_gravity(directory: Path) -> Module:
    """``a = g`` (a constant vector), fed by the velocity only for its batch size."""
    return equation(
        directory, "test/uniform-gravity", {"v": VEC3_V}, {"a": VEC3_A}, {"a": "g"},
        {"g": {"value": [0.0, 0.0, -9.81], "unit": "m/s**2"}},
    )  # fmt: skip


def published(registry: Registry, *directories: Path) -> list[Module]:
    """Publish each directory and pull it back (verified)."""
    return [registry.pull(registry.publish(d).ref) for d in directories]


def published_ball(directory: Path, registry: Registry) -> Path:
    """Publish ``test/ball@1.0.0``: a baseball's acceleration a = F / m from the drag network."""
    from modreg.runtime import Hybrid

    registry.publish(MODULES / "drag-mlp")
    hybrid = Hybrid({"v": VEC3_V}, {"a": VEC3_A}, name="test/ball", version="1.0.0")
    drag = hybrid.add("drag", registry.pull("examples/drag-mlp@0.1.0"), v="v")
    hybrid.output("a", drag.F / hybrid.constant("m", 0.145, "kg"))
    hybrid.build(registry=registry).save(directory)
    registry.publish(directory)
    return directory
