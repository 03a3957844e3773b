"""Hybrids as modules: write one to a directory (manifest, lockfile, weights); pull its parts.

A saved hybrid is ``kind: hybrid`` with ``requires:`` (module name -> compatible range),
``graph:`` (its wiring) and, when any part or constant was trained, ``weights.safetensors``
holding exactly those tensors (``parts.<part>.<tensor>``, ``const_<name>``). ``modreg.lock``
pins each required module to the version and digest the hybrid was built with. Rebuilding
pulls each part by its pinned version, refuses one whose digest differs from the lock, and
regenerates the same code, so outputs are identical bit for bit (the rebuild itself,
which needs the :class:`Hybrid` class, is ``load_hybrid`` in ``_hybrid``).

This module sits below ``_hybrid``: it reads the hybrid and the built network it is handed,
and is handed the function that builds a module (so it never imports the builder).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from packaging.version import Version

from modreg._content import LOCK_FILE
from modreg.errors import GraphError, IntegrityError, InvalidModule
from modreg.module import Module
from modreg.runtime._base import Executable
from modreg.runtime._weights import save_safetensors
from modreg.spec.graph import HybridGraph, LockedModule, LockFile, PartSpec, dump_lock, parse_lock
from modreg.spec.manifest import MANIFEST_FILE, dump_manifest, parse_manifest
from modreg.spec.names import parse_spec

if TYPE_CHECKING:
    from modreg.registry import Registry
    from modreg.runtime._hybrid import Hybrid, HybridNet

__all__ = ["WEIGHTS_FILE", "Builder", "compatible_range", "pull_parts", "save_hybrid"]

# Builds a pulled module into its torch form (``_hybrid.build_module``, handed in).
Builder = Callable[[Module], Executable]

WEIGHTS_FILE = "weights.safetensors"


def compatible_range(version: str) -> str:
    """The semver-compatible range of ``version``: ``>=1.2.0,<2`` (``>=0.3.1,<0.4`` below 1)."""
    parsed = Version(version)
    upper = f"{parsed.major + 1}" if parsed.major > 0 else f"0.{parsed.minor + 1}"
    return f">={version},<{upper}"


def _part_modules(net: HybridNet, hybrid: Hybrid) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for name, part in hybrid.parts.items():
        built = net.parts[name]
        assert isinstance(built, Executable)
        source = part.source if isinstance(part.source, Module) else built.origin
        if source is None:
            raise GraphError(
                f"part {name!r} is a fresh block that is not a module yet: save it with "
                f"block.save(DIR, name=...) and publish it, then save the hybrid"
            )
        modules[name] = source
    return modules


def _lock(modules: dict[str, Module]) -> LockFile:
    locked: dict[str, LockedModule] = {}
    for part, module in modules.items():
        pin = LockedModule(version=module.version, digest=module.digest)
        if locked.get(module.name, pin) != pin:
            raise GraphError(
                f"part {part!r} uses {module.ref} but another part uses {module.name}@"
                f"{locked[module.name].version}: a hybrid pins one version per module"
            )
        locked[module.name] = pin
    return LockFile(modules=locked)


def _weights(net: HybridNet, modules: dict[str, Module], build: Builder) -> dict[str, torch.Tensor]:
    """Tensors of trainable parts and constants, and of frozen parts that differ from source."""
    tensors: dict[str, torch.Tensor] = {}
    for name, part in net.parts.items():
        assert isinstance(part, Executable)
        state = part.trainable_state()
        if not state:
            continue
        if not net.is_trainable(name):
            original = build(modules[name]).trainable_state()
            if original.keys() == state.keys() and all(
                torch.equal(original[k], v) for k, v in state.items()
            ):
                continue
        tensors |= {f"parts.{name}.{key}": value for key, value in state.items()}
    return tensors | {k: v for k, v in net.trainable_state().items() if not k.startswith("parts.")}


def _graph(net: HybridNet, hybrid: Hybrid, modules: dict[str, Module]) -> HybridGraph:
    constants = {}
    for name, constant in hybrid.constants.items():
        if constant.trainable:  # the trained value, for readers (the weights file is exact)
            value = getattr(net, f"const_{name}").detach().cpu().tolist()
            constant = constant.model_copy(update={"value": value})
        constants[name] = constant
    parts = {
        name: PartSpec(module=modules[name].name, trainable=net.is_trainable(name))
        for name in hybrid.parts
    }
    return HybridGraph(
        parts=parts, constants=constants, wires=hybrid.wires, outputs=hybrid.output_wires
    )


def save_hybrid(net: HybridNet, hybrid: Hybrid, directory: Path, *, build: Builder) -> Module:
    """Write ``net`` as a hybrid module directory; see the module docstring for the layout.

    ``build`` rebuilds a frozen part from its module, to tell trained weights from pulled ones.

    Raises:
        GraphError: no name, a fresh unsaved block, or two versions of one module.
        InvalidManifest: the generated manifest does not validate (e.g. a bad name).
    """
    if not hybrid.name:
        raise GraphError("the hybrid has no name: pass name='namespace/name' to save()")
    modules = _part_modules(net, hybrid)
    lock = _lock(modules)
    graph = _graph(net, hybrid, modules)
    tensors = _weights(net, modules, build)
    data: dict[str, Any] = {"name": hybrid.name, "version": hybrid.version, "kind": "hybrid"}
    data["summary"] = hybrid.summary
    data["inputs"] = {
        n: p.model_dump(mode="json", exclude_defaults=True) for n, p in hybrid.inputs.items()
    }
    data["outputs"] = {
        n: p.model_dump(mode="json", exclude_defaults=True) for n, p in hybrid.outputs.items()
    }
    data["requires"] = {name: compatible_range(pin.version) for name, pin in lock.modules.items()}
    data["graph"] = graph.model_dump(mode="json", exclude_defaults=True)
    if tensors:
        data["weights"] = WEIGHTS_FILE
    manifest = parse_manifest(
        yaml.safe_dump(data, sort_keys=False), source=f"{hybrid.name} (generated)"
    )
    directory.mkdir(parents=True, exist_ok=True)
    if tensors:
        save_safetensors(tensors, directory / WEIGHTS_FILE)
    (directory / LOCK_FILE).write_text(dump_lock(lock))
    (directory / MANIFEST_FILE).write_text(dump_manifest(manifest))
    module = Module.from_dir(directory)
    net.origin, net.label = module, module.ref
    return module


def pull_parts(module: Module, registry: Registry) -> dict[str, Module]:
    """Pull every required module at its locked version, refusing digest mismatches."""
    requires = module.manifest.requires or {}
    lock = parse_lock(module.file(LOCK_FILE).read_bytes(), source=f"{module.ref}:{LOCK_FILE}")
    if set(lock.modules) != set(requires):
        raise InvalidModule(
            f"{module.ref}: {LOCK_FILE} pins {sorted(lock.modules)} but requires lists "
            f"{sorted(requires)}: save the hybrid again to regenerate the lock"
        )
    pulled: dict[str, Module] = {}
    for name, spec in requires.items():
        pin = lock.modules[name]
        if not parse_spec(spec).admits(Version(pin.version), yanked=False):
            raise InvalidModule(
                f"{module.ref}: {LOCK_FILE} pins {name}@{pin.version}, outside requires {spec!r}"
            )
        part = registry.pull(f"{name}@{pin.version}")
        if part.digest != pin.digest:
            raise IntegrityError(
                f"{module.ref}: {LOCK_FILE} pins {name}@{pin.version} with digest "
                f"{pin.digest[:23]}... but the registry holds {part.digest[:23]}...: refusing a "
                "part that is not the one the hybrid was built and trained with"
            )
        pulled[name] = part
    return pulled
