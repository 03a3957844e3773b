"""``modreg.swap``: a copy of a torch model with one submodule replaced by a modreg module.

The replacement is an adapter around ``modreg.build(module)``: it takes the submodule's own
arguments, maps them to ports through the capture's ``inputs`` mapping (units of another
scale converted), runs the module and puts its outputs back in the submodule's output layout
(the capture's recorded layout, or ``call_outputs``), dtype and device kept. The original
model is never touched: the swap edits a deep copy, and ``modreg_swaps`` on the copy says
what was put where. The copy exports (``torch.export``, ``torch.jit.trace``, ONNX) wherever
the user's model does: the built module inside runs without its own input checks, as the
part it replaced did.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch.nn as nn
from torch import Tensor

from modreg.capturing._batches import first_tensor
from modreg.capturing._capture import Capture
from modreg.capturing._lookup import find_part, put_part
from modreg.capturing._mapping import InputsMap, Layout, mapped
from modreg.errors import IntegrityError, InterfaceMismatch, InvalidModule
from modreg.module import Module
from modreg.runtime._equation import torch_dtype
from modreg.spec.compat import stand_in_problems
from modreg.spec.manifest import Port
from modreg.spec.units import conversion_factor

__all__ = ["SWAPS_FILE", "SwapRecord", "SwappedPart", "reapply_swaps", "save_swaps", "swap"]

SWAPS_FILE = "modreg-swaps.json"
SWAPS_VERSION = 1

if TYPE_CHECKING:
    from modreg.registry import Registry

CallOutputs = Callable[[dict[str, Tensor]], Any]


@dataclass(frozen=True)
class SwapRecord:
    """One swap: the submodule's dotted name and the module put there."""

    part: str
    module: str
    version: str
    digest: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


class SwappedPart(nn.Module):
    """Stands where a submodule stood: its arguments in, the built module's ports, its layout
    out (see :func:`swap`)."""

    def __init__(
        self,
        built: nn.Module,
        inputs: InputsMap,
        scales: tuple[dict[str, float], dict[str, float]],
        ports: Mapping[str, Port],
        layout: Layout | None,
        call_outputs: CallOutputs | None,
    ) -> None:
        super().__init__()
        self.built = built
        self.map_inputs = inputs
        self.into, self.back = scales
        self.ports = dict(ports)
        self.layout = layout
        self.call_outputs = call_outputs

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        values = mapped("inputs", self.map_inputs, args, kwargs)
        missing = [n for n in self.into if n not in values]
        if missing:
            raise InterfaceMismatch(f"the inputs mapping gives no value for ports {missing}")
        feed = {
            n: (values[n] * k if k != 1.0 else values[n]).to(torch_dtype(self.ports[n].dtype))
            for n, k in self.into.items()
        }
        out = self.built(feed)
        ports = {n: out[n] * k if k != 1.0 else out[n] for n, k in self.back.items()}
        if self.call_outputs is not None:
            return self.call_outputs(ports)
        value = next(iter(ports.values()))
        if self.layout is not None:
            return self.layout.restore(value, args, kwargs)
        like = first_tensor(args, kwargs)
        return value if like is None else value.to(dtype=like.dtype, device=like.device)


def _scales(cap: Capture | None, module: Module) -> tuple[dict[str, float], dict[str, float]]:
    """Unit factors into the module's inputs and back to the captured outputs' units."""
    new = module.interface
    if cap is None:
        return dict.fromkeys(new.inputs, 1.0), dict.fromkeys(new.outputs, 1.0)
    old = cap.interface
    problems = stand_in_problems(old, new, casts_dtype=True)
    if problems:
        raise InterfaceMismatch(
            f"{module.ref} cannot stand in for {cap.label}: " + "; ".join(map(str, problems))
        )
    into = {p: conversion_factor(old.inputs[p].unit, new.inputs[p].unit) for p in new.inputs}
    back = {p: conversion_factor(new.outputs[p].unit, old.outputs[p].unit) for p in old.outputs}
    return into, back


def swap(
    model: nn.Module,
    name: str,
    module: Module,
    inputs: Capture | InputsMap,
    *,
    call_outputs: CallOutputs | None = None,
) -> nn.Module:
    """A deep copy of ``model`` with submodule ``name`` replaced by ``module``, built.

    Args:
        model: the user's model (never modified).
        name: the submodule's dotted name (as for :func:`modreg.capture`).
        module: the replacement, usually the equation distilled from a capture of that part.
        inputs: the :class:`Capture` of the part (its ``inputs`` mapping, units and output
            layout are used, and ``module`` is checked against its interface), or an inputs
            mapping alone (then the module's single output is returned as ``(rows, *shape)``
            in the first argument's dtype and device).
        call_outputs: the inverse of the capture's ``outputs`` mapping: ``{port: tensor}`` to
            the submodule's output; needed when the capture mapped its output.

    Returns:
        The copy; its ``modreg_swaps`` lists a :class:`SwapRecord` per swap (earlier swaps of
        ``model`` kept). The built module is put on the device of the part's tensors; move
        the copy (``.to(device)``) as you would the model.

    Raises:
        GraphError: no submodule ``name``.
        InterfaceMismatch: ``module`` cannot stand in for the captured part, or the output
            layout cannot be restored without ``call_outputs``.
    """
    from modreg.runtime import build

    original = find_part(model, name)
    cap = inputs if isinstance(inputs, Capture) else None
    mapping = cap.inputs if cap is not None else inputs
    assert callable(mapping)
    outputs = module.interface.outputs if cap is None else cap.interface.outputs
    if call_outputs is None and (len(outputs) != 1 or (cap is not None and cap.outputs)):
        raise InterfaceMismatch(
            f"the part's output cannot be rebuilt from ports {list(outputs)} alone (several "
            "ports, or the capture mapped it with outputs=): pass call_outputs= ({port: "
            "tensor} -> the submodule's output)"
        )
    scales = _scales(cap, module)
    built = build(module)
    # The part it replaces checked nothing at its door, and a data-dependent NaN check would
    # stop torch.export and ONNX from tracing the user's model: the joint's shapes were
    # checked when the capture was made, so the built module runs unchecked here.
    built.check_inputs = False
    device = next((t.device for t in (*original.parameters(), *original.buffers())), None)
    if device is not None:  # the equation's constants live where the part's tensors did
        built.to(device)
    part = SwappedPart(
        built,
        mapping,
        scales,
        module.interface.inputs,
        None if cap is None else cap.layout,
        call_outputs,
    )
    swapped = copy.deepcopy(model)
    put_part(swapped, name, part)
    record = SwapRecord(name, module.name, module.version, module.digest)
    # A plain attribute (nn.Module's typed __setattr__ only knows tensors and modules).
    vars(swapped)["modreg_swaps"] = [*getattr(model, "modreg_swaps", []), record]
    return swapped


def save_swaps(swapped: nn.Module, path: str | Path) -> Path:
    """Write what was swapped where (``modreg-swaps.json``): each part's dotted name and the
    module put there, by name, version and digest, the record a hybrid's lock keeps.

    Raises:
        InvalidModule: ``swapped`` is not a model :func:`swap` made.
    """
    records: list[SwapRecord] = getattr(swapped, "modreg_swaps", [])
    if not records:
        raise InvalidModule(
            f"{type(swapped).__name__} has no swaps to save: save the copy modreg.swap returned"
        )
    target = Path(path)
    if target.is_dir():
        target = target / SWAPS_FILE
    body = {"swaps_version": SWAPS_VERSION, "model": type(swapped).__name__}
    body["swaps"] = [r.to_json() for r in records]
    target.write_text(json.dumps(body, indent=2) + "\n")
    return target


def _read_swaps(path: Path) -> list[SwapRecord]:
    try:
        raw = json.loads(path.read_text())
        assert isinstance(raw, dict) and raw.get("swaps_version") == SWAPS_VERSION
        return [
            SwapRecord(str(r["part"]), str(r["module"]), str(r["version"]), str(r["digest"]))
            for r in raw["swaps"]
        ]
    except (OSError, ValueError, AssertionError, KeyError, TypeError) as exc:
        raise InvalidModule(
            f"{str(path)!r} is not a swaps record of this modreg ({type(exc).__name__}): "
            "write it with modreg.capturing.save_swaps"
        ) from None


def reapply_swaps(
    model: nn.Module,
    path: str | Path,
    inputs: Mapping[str, Capture | InputsMap],
    *,
    registry: Registry | None = None,
    call_outputs: Mapping[str, CallOutputs] | None = None,
) -> nn.Module:
    """The swaps a :func:`save_swaps` record lists, made again on ``model``.

    Each module is pulled at its recorded version (the trust policy applies) and must have
    the recorded digest: the swap is rebuilt from exactly the bytes it was made with.

    Args:
        inputs: per swapped part, its capture or inputs mapping (mappings are code, so they
            are given again, never stored).

    Raises:
        IntegrityError: a module's digest differs from the record.
        InvalidModule: the file is not a swaps record, or a part has no ``inputs``.
    """
    from modreg.registry import Registry

    source = registry if registry is not None else Registry()
    swapped = model
    for record in _read_swaps(Path(path)):
        if record.part not in inputs:
            raise InvalidModule(
                f"the record swaps part {record.part!r}: give its capture or inputs mapping "
                "in inputs="
            )
        module = source.pull(f"{record.module}@{record.version}")
        if module.digest != record.digest:
            raise IntegrityError(
                f"{module.ref} in {source.location} is {module.digest[:23]}... but the swap was "
                f"made with {record.digest[:23]}...: use the registry it was made with"
            )
        outputs = (call_outputs or {}).get(record.part)
        swapped = swap(swapped, record.part, module, inputs[record.part], call_outputs=outputs)
    return swapped
