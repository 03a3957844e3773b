"""``modreg.build`` and ``modreg.replace``: the runtime's two entry points for pulled modules.

They sit above everything else in the runtime: the kind dispatch (``_hybrid.build_module``,
which a hybrid also uses for its parts) and the replacement rule (``_replace``) lie below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modreg.errors import GraphError
from modreg.module import Module
from modreg.runtime._base import Executable
from modreg.runtime._hybrid import Hybrid, HybridNet, build_module
from modreg.runtime._parts import WireLike

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = ["build", "replace"]


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
    built = build_module(module, registry)
    built.check_inputs = check_inputs
    return built


def replace(
    model: Any,
    part: str,
    module: Any,
    *,
    registry: Registry | None = None,
    trainable: bool | None = None,
    **wires: WireLike,
) -> Any:
    """Swap ``part`` of a hybrid for a module that can stand in for it.

    Args:
        model: a :class:`Hybrid` (returns a Hybrid), a built :class:`HybridNet` (returns a
            HybridNet sharing the other parts), or a pulled hybrid :class:`Module` (built
            first; returns a HybridNet).
        part: the part's name in the hybrid.
        module: the replacement: a pulled Module or a built module (e.g. a Block).
        registry: where a hybrid Module's parts come from.
        trainable: whether the new part trains (default: built modules do, Modules do not).
        wires: wires for input ports the old part did not have, e.g. ``rho=1.2``.

    Raises:
        InterfaceMismatch: the replacement's interface does not fit; every difference listed.
        GraphError: no such part, or ``model`` is not a hybrid.

    Example:
        >>> eq = modreg.pull("physics/drag@1")  # doctest: +SKIP
        >>> net2 = modreg.replace(net, "drag", eq, rho=1.2)  # doctest: +SKIP
    """
    if isinstance(model, Module):
        if model.kind != "hybrid":
            raise GraphError(f"replace() needs a hybrid; {model.ref} is a {model.kind} module")
        model = build(model, registry=registry)
    if isinstance(model, Hybrid | HybridNet):
        return model.replace(part, module, trainable=trainable, **wires)
    raise GraphError(
        f"replace() needs a Hybrid, a built hybrid or a hybrid Module, got {type(model).__name__}"
    )
