"""A small world of dependents: drag versions, hybrids over them, reference data as files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modreg.spec.graph import LockedModule, LockFile, dump_lock
from tests._check_data import K, write_drag

V = {"unit": "m/s", "shape": [3], "range": [-20.0, 20.0]}
F = {"unit": "N", "shape": [3]}
DRAG_PART = {"drag.v": "v", "drag.rho": "1.2"}


def write_hybrid(
    directory: Path,
    registry: Any,
    name: str,
    parts: dict[str, str],
    *,
    version: str = "1.0.0",
    requires: dict[str, str] | None = None,
    pins: dict[str, str] | None = None,
    wires: dict[str, str] | None = None,
    checks: list[dict[str, Any]] | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """A hybrid folder ``F = <part>.F``, each part's module locked to the version in ``pins``.

    ``parts`` maps part name -> module name; ``pins`` module name -> version (default: the
    newest published); ``requires`` module name -> range (default ``>=1.0.0,<2``).
    """
    modules = sorted(set(parts.values()))
    requires = requires or dict.fromkeys(modules, ">=1.0.0,<2")
    first = next(iter(parts))
    data: dict[str, Any] = {
        "name": name,
        "version": version,
        "kind": "hybrid",
        "summary": f"test hybrid {name}",
        "inputs": {"v": V},
        "outputs": {"F": F},
        "requires": requires,
        "graph": {
            "parts": {p: {"module": m} for p, m in parts.items()},
            "wires": wires if wires is not None else {f"{p}.v": "v" for p in parts},
            "outputs": {"F": f"{first}.F"},
        },
    }
    if checks:
        data["checks"] = checks
    if provenance:
        data["provenance"] = provenance
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "modreg.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    locked = {}
    for module in modules:
        ref = f"{module}@{(pins or {}).get(module, requires[module])}"
        record = registry.resolve(ref)
        locked[module] = LockedModule(version=record.version, digest=record.digest)
    (directory / "modreg.lock").write_text(dump_lock(LockFile(modules=locked)))
    return directory


def drag_versions(root: Path, registry: Any, *versions: tuple[str, str | None]) -> None:
    """Publish ``physics/drag`` at each (version, variant) of tests/_check_data.py."""
    for version, variant in versions:
        registry.publish(write_drag(root / f"drag-{version}", variant, version=version))


def write_force_data(path: Path, rows: int = 300, seed: int = 3) -> Path:
    """CSV of the exact drag force at rho = 1.2 for velocities inside ``V``'s range."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(-20.0, 20.0, (rows, 3))
    force = -K * 1.2 * np.linalg.norm(v, axis=1)[:, None] * v
    lines = ["v[0],v[1],v[2],F[0],F[1],F[2]"]
    lines += [",".join(f"{x:.17g}" for x in (*a, *b)) for a, b in zip(v, force, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (a registry): proves a command changed nothing there."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
