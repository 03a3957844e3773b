"""Replace a part of a hybrid by a module that can stand in for it (e.g. a network by its law).

Whether it can is :func:`modreg.spec.compat.stand_in_problems`, asked about the outputs of the
old part the hybrid reads and the new module's inputs that are wired: every used output must
exist with the same shape, dtype and dimension (a different scale is converted at the joint),
and every input of the new module must be wired, by the old part's wires where the port names
agree or by wires given to :func:`replace_part`. Anything else is refused with the whole
interface difference spelled out.

This module works on a :class:`~modreg.runtime._hybrid.Hybrid` it is handed and imports only
what lies below it (the part record, the wiring grammar, the rule), so ``Hybrid.replace`` can
call it without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modreg.errors import GraphError, InterfaceMismatch
from modreg.runtime._base import Executable
from modreg.runtime._parts import Part, WireLike
from modreg.runtime._wiring import _REF_RE
from modreg.spec.compat import Difference, stand_in_problems
from modreg.spec.interface import Interface

if TYPE_CHECKING:
    from modreg.runtime._hybrid import Hybrid

__all__ = ["interface_differences", "replace_part"]


def _used_outputs(hybrid: Hybrid, part: str) -> set[str]:
    texts = [*hybrid.wires.values(), *hybrid.output_wires.values()]
    return {m.group(2) for text in texts for m in _REF_RE.finditer(text) if m.group(1) == part}


def _sentence(problem: Difference) -> str:
    """A refusal in the builder's words (what to pass to ``replace()`` for an unwired input)."""
    old, new, where = problem.old, problem.new, problem.where
    if problem.kind == "missing":
        assert old is not None
        return f"{where} ({old.unit}) is used but the new module lacks it"
    if problem.kind == "unfed":
        assert new is not None
        return f"{where} ({new.unit}) is not wired: pass {problem.port}=... to replace()"
    assert old is not None and new is not None
    if problem.kind == "shape":
        return f"{where} has shape {list(old.shape)} but the new module's has {list(new.shape)}"
    if problem.kind == "dtype":
        return f"{where} is {old.dtype} but the new module's is {new.dtype}"
    return f"{where} is in {old.unit} but the new module's is in {new.unit} (dimensions differ)"


def interface_differences(
    old: Interface, new: Interface, *, used_outputs: set[str], wired_inputs: set[str]
) -> list[str]:
    """Why ``new`` cannot stand in for ``old`` in a hybrid (empty when it can)."""
    problems = stand_in_problems(old, new, used_outputs=used_outputs, supplied_inputs=wired_inputs)
    return [_sentence(problem) for problem in problems]


def replace_part(
    hybrid: Hybrid, part: str, module: Any, *, trainable: bool | None, wires: Mapping[str, WireLike]
) -> Hybrid:
    """A copy of ``hybrid`` with ``part`` swapped; see :meth:`Hybrid.replace`."""
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
    result.parts[part] = Part(module, built if trainable is None else trainable)
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
