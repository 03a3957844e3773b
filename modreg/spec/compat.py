"""Can NEW stand in for OLD? The one compatibility rule for ports, units, shapes, dtypes, ranges.

Three places ask it: a hybrid part replaced (``Hybrid.replace``), a module checked drop-in
against another (``modreg check replace``), and the interface policy that sizes a version bump
(``modreg check interface``). They differ only in what they do with the answer, never in the
facts, so the facts live here:

- :func:`port_differences`: how one port of NEW differs from the same port of OLD — shape,
  dtype, unit (another dimension, another scale, or only another spelling) and range (read
  in OLD's unit).
- :func:`stand_in_problems`: what stops NEW from standing in for OLD. Every output of OLD
  the caller uses must exist in NEW with the same shape and dimension (another scale is
  converted); every input of NEW must be fed, by OLD's input of that name (same shape and
  dimension) or by something the caller supplies. dtypes must agree unless the boundary
  casts. Ranges never block: they are promises about validity, judged by the interface policy.

Pure data: no torch, and pint only through :mod:`modreg.spec.units`.

Example:
    >>> from modreg.spec.manifest import Port
    >>> [d.kind for d in port_differences("input", "r", Port(unit="m"), Port(unit="km"))]
    ['unit-scale']
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from modreg.spec.units import conversion_factor, same_dimension

if TYPE_CHECKING:
    from modreg.spec.interface import Interface
    from modreg.spec.manifest import Port

__all__ = [
    "BLOCKING",
    "Difference",
    "Direction",
    "Kind",
    "port_differences",
    "range_in_unit",
    "stand_in_problems",
]

Direction = Literal["input", "output"]
Kind = Literal[
    "missing",  # OLD's port is used but NEW lacks it
    "unfed",  # NEW's input is neither OLD's input nor supplied
    "shape",
    "dtype",
    "unit-dimension",  # another physical quantity
    "unit-scale",  # the same dimension, another amount per unit (converted at a joint)
    "unit-spelling",  # the same unit, written differently
    "range-widened",
    "range-narrowed",
    "range-shifted",  # wider on one side, narrower on the other
]

# What stops NEW from standing in for OLD, whoever asks ("dtype" unless the boundary casts).
BLOCKING: frozenset[str] = frozenset({"missing", "unfed", "shape", "dtype", "unit-dimension"})


@dataclass(frozen=True)
class Difference:
    """One way port ``port`` of NEW differs from OLD's (``old``/``new`` None when absent)."""

    kind: Kind
    direction: Direction
    port: str
    old: Port | None
    new: Port | None

    @property
    def where(self) -> str:
        return f"{self.direction} {self.port!r}"

    @property
    def detail(self) -> str:
        """The difference in words, values included (``unit m -> km (1 m = 0.001 km)``)."""
        old, new = self.old, self.new
        if self.kind == "missing":
            assert old is not None
            return f"used but the new module lacks it ({old.unit} {_shape(old)})"
        if self.kind == "unfed":
            assert new is not None
            return f"not fed: the old module has no such input ({new.unit} {_shape(new)})"
        assert old is not None and new is not None
        if self.kind == "shape":
            return f"shape {list(old.shape)} -> {list(new.shape)}"
        if self.kind == "dtype":
            return f"dtype {old.dtype} -> {new.dtype}"
        if self.kind == "unit-dimension":
            return f"unit {old.unit} -> {new.unit} (dimension changed)"
        if self.kind == "unit-scale":
            factor = conversion_factor(old.unit, new.unit)
            return f"unit {old.unit} -> {new.unit} (1 {old.unit} = {factor:g} {new.unit})"
        if self.kind == "unit-spelling":
            return f"unit {old.unit} -> {new.unit} (same unit)"
        return f"range {_range_text(old.range)} -> {_range_text(new.range)}"

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


def _shape(port: Port) -> str:
    return str(list(port.shape)) if port.shape else "scalar"


def _range_text(value: tuple[float, float] | None) -> str:
    return "none" if value is None else f"[{value[0]:g}, {value[1]:g}]"


def range_in_unit(port: Port, unit: str) -> tuple[float, float]:
    """``port``'s range expressed in ``unit`` (unbounded when it declares none).

    Left as declared when ``unit`` measures another dimension (that difference is reported
    on its own).
    """
    low, high = port.range if port.range is not None else (-math.inf, math.inf)
    if port.unit == unit or not same_dimension(port.unit, unit):
        return (low, high)
    factor = conversion_factor(port.unit, unit)
    return (low * factor, high * factor)


def _unit_kind(old: str, new: str) -> Kind | None:
    if old == new:
        return None
    if not same_dimension(old, new):
        return "unit-dimension"
    return "unit-scale" if conversion_factor(old, new) != 1.0 else "unit-spelling"


def _range_kind(old: Port, new: Port) -> Kind | None:
    old_low, old_high = range_in_unit(old, old.unit)
    new_low, new_high = range_in_unit(new, old.unit)
    if math.isclose(old_low, new_low, rel_tol=1e-9) and math.isclose(
        old_high, new_high, rel_tol=1e-9
    ):
        return None
    narrowed = new_low > old_low or new_high < old_high
    widened = new_low < old_low or new_high > old_high
    if narrowed and widened:
        return "range-shifted"
    return "range-narrowed" if narrowed else "range-widened"


def port_differences(direction: Direction, port: str, old: Port, new: Port) -> list[Difference]:
    """How NEW's ``port`` differs from OLD's: unit, shape, dtype, range, in that order.

    Raises:
        InvalidUnit: a unit does not parse.
    """
    kinds = [
        _unit_kind(old.unit, new.unit),
        "shape" if old.shape != new.shape else None,
        "dtype" if old.dtype != new.dtype else None,
        _range_kind(old, new),
    ]
    return [Difference(kind, direction, port, old, new) for kind in kinds if kind is not None]


def _ports(
    direction: Direction, old: Mapping[str, Port], new: Mapping[str, Port], names: Iterable[str]
) -> list[Difference]:
    return [d for name in names for d in port_differences(direction, name, old[name], new[name])]


def stand_in_problems(
    old: Interface,
    new: Interface,
    *,
    used_outputs: Collection[str] | None = None,
    supplied_inputs: Collection[str] = (),
    casts_dtype: bool = False,
) -> list[Difference]:
    """Why NEW cannot stand in for OLD (empty when it can); see the module docstring.

    Args:
        old, new: the two interfaces.
        used_outputs: OLD's outputs the caller reads (default: all of them; names OLD
            lacks are ignored).
        supplied_inputs: NEW's inputs the caller feeds itself (wires, fixed values).
        casts_dtype: the boundary converts values to each side's dtype (no dtype problem).

    Raises:
        InvalidUnit: a unit does not parse.
    """
    blocking = BLOCKING - {"dtype"} if casts_dtype else BLOCKING
    # A name OLD does not have is the wiring check's business, not this rule's.
    used = [p for p in old.outputs if used_outputs is None or p in used_outputs]
    problems = [
        Difference("missing", "output", p, old.outputs[p], None)
        for p in used
        if p not in new.outputs
    ]
    problems += _ports("output", old.outputs, new.outputs, (p for p in used if p in new.outputs))
    for port, spec in new.inputs.items():
        if port in old.inputs:
            problems += _ports("input", old.inputs, new.inputs, [port])
        elif port not in supplied_inputs:
            problems.append(Difference("unfed", "input", port, None, spec))
    return [d for d in problems if d.kind in blocking]
