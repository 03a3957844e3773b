"""Replace a part of a hybrid by an interface-compatible module (e.g. a network by its equation).

Compatible means: every output port of the old part that the hybrid uses exists on the new
module with the same shape, dtype and dimension (a different scale is converted at the
joint), and every input port of the new module is wired, by the old part's wires where the
port names agree or by wires given to :func:`replace`. Anything else is refused with the
whole interface difference spelled out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modreg.errors import GraphError, InterfaceMismatch
from modreg.runtime._base import Executable
from modreg.runtime._wiring import _REF_RE
from modreg.spec.interface import Interface
from modreg.spec.manifest import Port
from modreg.spec.units import parse_unit

if TYPE_CHECKING:
    from modreg.registry import Registry
    from modreg.runtime._hybrid import Hybrid, WireLike

__all__ = ["interface_differences", "replace", "replace_part"]


def _used_outputs(hybrid: Hybrid, part: str) -> set[str]:
    texts = [*hybrid.wires.values(), *hybrid.output_wires.values()]
    return {m.group(2) for text in texts for m in _REF_RE.finditer(text) if m.group(1) == part}


def _port_difference(where: str, old: Port, new: Port) -> str | None:
    if old.shape != new.shape:
        return f"{where} has shape {list(old.shape)} but the new module's has {list(new.shape)}"
    if old.dtype != new.dtype:
        return f"{where} is {old.dtype} but the new module's is {new.dtype}"
    if parse_unit(old.unit).dimensionality != parse_unit(new.unit).dimensionality:
        return f"{where} is in {old.unit} but the new module's is in {new.unit} (dimensions differ)"
    return None


def interface_differences(
    old: Interface, new: Interface, *, used_outputs: set[str], wired_inputs: set[str]
) -> list[str]:
    """Why ``new`` cannot stand in for ``old`` (empty when it can)."""
    problems: list[str] = []
    for port in sorted(used_outputs):
        if port not in new.outputs:
            spec = old.outputs[port]
            problems.append(f"output {port!r} ({spec.unit}) is used but the new module lacks it")
            continue
        problem = _port_difference(f"output {port!r}", old.outputs[port], new.outputs[port])
        problems += [problem] if problem else []
    for port, spec in new.inputs.items():
        if port in old.inputs:
            problem = _port_difference(f"input {port!r}", old.inputs[port], spec)
            problems += [problem] if problem else []
        elif port not in wired_inputs:
            problems.append(
                f"input {port!r} ({spec.unit}) is not wired: pass {port}=... to replace()"
            )
    return problems


def replace_part(
    hybrid: Hybrid, part: str, module: Any, *, trainable: bool | None, wires: Mapping[str, WireLike]
) -> Hybrid:
    """A copy of ``hybrid`` with ``part`` swapped; see :meth:`Hybrid.replace`."""
    from modreg.runtime._hybrid import _Part

    if part not in hybrid.parts:
        raise GraphError(f"no part {part!r} to replace; the parts are {list(hybrid.parts)}")
    old = hybrid.parts[part]
    new_interface: Interface = module.interface
    label = str(getattr(module, "ref", None) or getattr(module, "label", "block"))
    problems = interface_differences(
        old.interface,
        new_interface,
        used_outputs=_used_outputs(hybrid, part),
        wired_inputs=set(wires),
    )
    if problems:
        raise InterfaceMismatch(
            f"cannot replace part {part!r} ({old.label} {old.interface.describe()}) by {label} "
            f"{new_interface.describe()}: " + "; ".join(problems)
        )
    result = hybrid.copy()
    built = isinstance(module, Executable)
    result.parts[part] = _Part(module, built if trainable is None else trainable)
    prefix = f"{part}."
    result.wires = {
        t: w
        for t, w in result.wires.items()
        if not t.startswith(prefix) or t[len(prefix) :] in new_interface.inputs
    }
    for port, source in wires.items():
        result.wire(f"{part}.{port}", source)
    try:
        result.check()
    except (GraphError, InterfaceMismatch) as exc:
        raise InterfaceMismatch(f"cannot replace part {part!r} by {label}: {exc}") from exc
    return result


def replace(
    model: Any,
    part: str,
    module: Any,
    *,
    registry: Registry | None = None,
    trainable: bool | None = None,
    **wires: WireLike,
) -> Any:
    """Swap ``part`` of a hybrid for an interface-compatible module.

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
    from modreg.module import Module
    from modreg.runtime._build import build
    from modreg.runtime._hybrid import Hybrid, HybridNet

    if isinstance(model, Module):
        if model.kind != "hybrid":
            raise GraphError(f"replace() needs a hybrid; {model.ref} is a {model.kind} module")
        model = build(model, registry=registry)
    if isinstance(model, Hybrid | HybridNet):
        return model.replace(part, module, trainable=trainable, **wires)
    raise GraphError(
        f"replace() needs a Hybrid, a built hybrid or a hybrid Module, got {type(model).__name__}"
    )
