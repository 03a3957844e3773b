"""``modreg.build``: any pulled module (equation, network, hybrid) -> an executable torch module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modreg.errors import InvalidModule
from modreg.runtime._base import Executable

if TYPE_CHECKING:
    from modreg.module import Module
    from modreg.registry import Registry

__all__ = ["build"]


def build(
    module: Module, *, registry: Registry | None = None, check_inputs: bool = True
) -> Executable:
    """Turn a module into a torch module: ``forward(inputs: dict) -> dict`` by port name.

    Args:
        module: a pulled (or locally validated) module.
        registry: where a hybrid's parts are pulled from (default: ``$MODREG_REGISTRY``).
        check_inputs: check ports for presence, shape and NaN/Inf at every call
            (``module.check_inputs = False`` turns it off later).

    Raises:
        InvalidWeights: a network's weights do not fit its architecture exactly.
        IntegrityError: a hybrid part does not match the digest its lockfile pins.
        GraphError, InterfaceMismatch: a hybrid's wiring does not check.

    Example:
        >>> drag = modreg.build(modreg.pull("physics/drag@~=1.0"))  # doctest: +SKIP
        >>> drag({"v": torch.zeros(8, 3), "rho": torch.ones(8)})["F"].shape  # doctest: +SKIP
        torch.Size([8, 3])
    """
    kind = module.manifest.kind
    built: Executable
    if kind == "equation":
        from modreg.runtime._equation import build_equation

        built = build_equation(module.manifest, origin=module)
    elif kind == "network":
        from modreg.runtime._network import Block

        built = Block.load(module)
    elif kind == "hybrid":
        from modreg.runtime._hybrid_io import load_hybrid

        built = load_hybrid(module, registry)
    else:  # pragma: no cover - the manifest model allows only these kinds
        raise InvalidModule(f"{module.ref}: cannot build a module of kind {kind!r}")
    built.check_inputs = check_inputs
    return built
