"""The wiring of a hybrid module as stored in its manifest, and its lockfile (``modreg.lock``).

A hybrid's own ``inputs``/``outputs`` in the manifest are its interface; ``graph`` says how its
parts connect. Every value flowing into a part's input port or out of the hybrid is an
*expression* in modreg's safe grammar (see :mod:`modreg.spec.expr`) over the hybrid's inputs,
its constants and its parts' outputs (written ``part.port``)::

    graph:
      constants:
        m: {value: 0.145, unit: kg}
      parts:
        drag:     {module: physics/drag}
        residual: {module: examples/ball-residual, trainable: true}
      wires:
        drag.v: v               # a plain wire
        drag.rho: "1.2"         # a bare number is a constant input, in the port's own unit
        residual.v: v
      outputs:
        a: g + drag.F / m + residual.a   # sums and products of port values

Units are checked at every joint when the graph is built, and compatible units of a
different scale (km into m) are converted by a factor inserted there. Part modules are named
by ``requires`` keys; ``modreg.lock`` pins each to the exact version and digest it was built
with, so pulling a hybrid rebuilds exactly the network that was published.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modreg.errors import InvalidModule
from modreg.spec.names import parse_name, parse_version
from modreg.spec.units import DIMENSIONLESS, parse_unit

__all__ = [
    "GraphConstant",
    "HybridGraph",
    "LockFile",
    "LockedModule",
    "PartSpec",
    "check_joints",
    "check_lock",
    "check_wiring",
    "dump_lock",
    "parse_lock",
    "split_ref",
]

_IDENT = r"[A-Za-z][A-Za-z0-9_]{0,63}"
_IDENT_RE = re.compile(_IDENT)
_PORT_PATH_RE = re.compile(rf"({_IDENT})\.({_IDENT})")
_DIGEST_RE = r"^sha256:[0-9a-f]{64}$"
MAX_EXPRESSION_CHARS = 4000
Expression = Annotated[str, Field(min_length=1, max_length=MAX_EXPRESSION_CHARS)]


def _check_name(name: str, what: str) -> str:
    """Graph-local names: identifiers without ``__`` (the builder reserves it for ``a.b``)."""
    if not _IDENT_RE.fullmatch(name) or "__" in name:
        raise ValueError(
            f"invalid {what} name {name!r}: use an identifier such as 'drag' or 'm_ball' "
            "(letters, digits, single underscores)"
        )
    return name


def split_ref(text: str) -> tuple[str, str]:
    """Split ``part.port`` into its two names.

    Raises:
        ValueError: ``text`` is not ``part.port``.
    """
    match = _PORT_PATH_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a 'part.port' reference, e.g. 'drag.v'")
    return match.group(1), match.group(2)


class PartSpec(BaseModel):
    """One part of a hybrid: the required module it instantiates, and whether it trains."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    module: str
    trainable: bool = False

    @field_validator("module")
    @classmethod
    def _module(cls, value: str) -> str:
        return parse_name(value)


class GraphConstant(BaseModel):
    """A named constant of the wiring (e.g. a mass); an ``nn.Parameter`` when trainable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | Annotated[list[float], Field(min_length=1, max_length=4096)]
    unit: str = DIMENSIONLESS
    trainable: bool = False

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        parse_unit(value)
        return value

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | list[float]) -> float | list[float]:
        values = value if isinstance(value, list) else [value]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"constant value {value!r} is not finite: give a finite number")
        return value

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.value),) if isinstance(self.value, list) else ()


class HybridGraph(BaseModel):
    """Parts, constants, wires (``part.port`` <- expression) and outputs of a hybrid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parts: Annotated[dict[str, PartSpec], Field(min_length=1, max_length=256)]
    constants: Annotated[dict[str, GraphConstant], Field(max_length=256)] = {}
    wires: Annotated[dict[str, Expression], Field(max_length=4096)] = {}
    outputs: Annotated[dict[str, Expression], Field(min_length=1, max_length=256)]

    @field_validator("parts")
    @classmethod
    def _part_names(cls, parts: dict[str, PartSpec]) -> dict[str, PartSpec]:
        for name in parts:
            _check_name(name, "part")
        return parts

    @field_validator("constants")
    @classmethod
    def _constant_names(cls, constants: dict[str, GraphConstant]) -> dict[str, GraphConstant]:
        for name in constants:
            _check_name(name, "graph constant")
        return constants

    @model_validator(mode="after")
    def _wire_targets(self) -> HybridGraph:
        for target in self.wires:
            try:
                part, _ = split_ref(target)
            except ValueError as exc:
                raise ValueError(f"wire target {exc}") from None
            if part not in self.parts:
                raise ValueError(
                    f"wire target {target!r} names no part; the parts are {sorted(self.parts)}"
                )
        clash = set(self.parts) & set(self.constants)
        if clash:
            raise ValueError(f"names {sorted(clash)} are both parts and constants: rename one")
        return self


class LockedModule(BaseModel):
    """The exact version and digest a hybrid part was built with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    digest: Annotated[str, Field(pattern=_DIGEST_RE)]

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return str(parse_version(value))


class LockFile(BaseModel):
    """``modreg.lock``: module name -> pinned version and digest, one per ``requires`` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lock_version: Literal[1] = 1
    modules: dict[str, LockedModule]

    @field_validator("modules")
    @classmethod
    def _names(cls, modules: dict[str, LockedModule]) -> dict[str, LockedModule]:
        for name in modules:
            parse_name(name)
        return modules


def parse_lock(text: str | bytes, *, source: str = "modreg.lock") -> LockFile:
    """Validate lockfile text (JSON).

    Raises:
        InvalidModule: the text is not a valid lockfile.
    """
    try:
        return LockFile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "lockfile"
        raise InvalidModule(
            f"{source}: {where}: {first['msg']}: regenerate it by saving the hybrid again"
        ) from exc


def dump_lock(lock: LockFile) -> str:
    """Canonical JSON text of a lockfile (sorted keys, so equal locks have equal bytes)."""
    return json.dumps(lock.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


# -- static checks of a saved hybrid ---------------------------------------------------------
# What the builder (modreg.runtime) refuses at build time, re-expressed on data alone, so that
# publish and CI refuse a broken hybrid before it becomes an immutable version.

_WIRE_REF_RE = re.compile(r"(?<![\w.])([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")


def _refs(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _WIRE_REF_RE.finditer(text)]


def check_lock(lock: LockFile, requires: dict[str, str]) -> None:
    """The lock pins exactly the required modules, each inside its ``requires`` range.

    Raises:
        InvalidModule: a module pinned but not required (or the reverse), or a pin outside
            its range.
    """
    from packaging.version import Version

    from modreg.spec.names import parse_spec

    if set(lock.modules) != set(requires):
        raise InvalidModule(
            f"modreg.lock pins {sorted(lock.modules)} but requires lists {sorted(requires)}: "
            "save the hybrid again to regenerate the lock"
        )
    for name, spec in requires.items():
        pin = lock.modules[name]
        if not parse_spec(spec).admits(Version(pin.version), yanked=False):
            raise InvalidModule(
                f"modreg.lock pins {name}@{pin.version}, outside requires {spec!r}: "
                "save the hybrid again to regenerate the lock"
            )


def check_wiring(graph: HybridGraph, inputs: dict[str, object], outputs: dict[str, object]) -> None:
    """Structure of the wiring without the parts' interfaces: names, expressions, cycles.

    Every wire and output must parse in the safe expression grammar over the hybrid's
    inputs, its constants and ``part.port`` references to parts that exist (so a wire that
    calls a Python builtin is refused here, as the builder would), and parts may not feed
    each other in a cycle.

    Raises:
        GraphError: no inputs, a reserved or clashing name, an output without exactly one
            expression, a reference to no part, an expression outside the grammar, a cycle.
    """
    from modreg.errors import GraphError

    if not inputs:
        raise GraphError("a hybrid needs at least one input port (it sets the batch size)")
    for name in [*inputs, *graph.constants]:
        if "__" in name:
            raise GraphError(f"name {name!r} contains '__', which hybrids reserve: rename it")
    clash = set(inputs) & (set(graph.parts) | set(graph.constants))
    if clash:
        raise GraphError(f"{sorted(clash)} name both an input and a part or constant: rename one")
    missing = [o for o in outputs if o not in graph.outputs]
    extra = [o for o in graph.outputs if o not in outputs]
    if missing or extra:
        raise GraphError(
            f"hybrid outputs {list(outputs)} need exactly one expression each in graph.outputs: "
            f"missing {missing}, not declared as outputs {extra}"
        )
    needs: dict[str, set[str]] = {part: set() for part in graph.parts}
    for target, text in [*graph.wires.items(), *graph.outputs.items()]:
        used = _parse_wire(graph, inputs, target, text)
        if target in graph.wires:
            needs[split_ref(target)[0]] |= used
    _check_acyclic(needs)


def _parse_wire(graph: HybridGraph, inputs: dict[str, object], target: str, text: str) -> set[str]:
    """Parse one wire in the grammar; return the parts it reads from."""
    from modreg.errors import GraphError, InvalidExpression
    from modreg.spec.expr import parse_expression

    refs = _refs(text)
    for part, _ in refs:
        if part not in graph.parts:
            raise GraphError(
                f"wire into {target!r}: {text[:60]!r} names no part {part!r}; the parts are "
                f"{sorted(graph.parts)}"
            )
    names = [*inputs, *graph.constants, *(f"{p}__{q}" for p, q in refs)]
    mangled = _WIRE_REF_RE.sub(lambda m: f"{m.group(1)}__{m.group(2)}", text)
    try:
        parse_expression(mangled, names)
    except InvalidExpression as exc:
        message = re.sub(r"([A-Za-z][A-Za-z0-9_]*?)__([A-Za-z_]\w*)", r"\1.\2", str(exc))
        raise GraphError(f"wire into {target!r}: {message}") from exc
    return {part for part, _ in refs}


def _check_acyclic(needs: dict[str, set[str]]) -> None:
    from modreg.errors import GraphError

    done: list[str] = []
    while len(done) < len(needs):
        ready = [p for p in needs if p not in done and needs[p] <= set(done)]
        if not ready:
            left = sorted(p for p in needs if p not in done)
            raise GraphError(f"the wiring has a cycle among parts {left}: break it")
        done.append(ready[0])


def check_joints(
    graph: HybridGraph,
    ports: tuple[dict[str, str], dict[str, str]],
    parts: dict[str, tuple[dict[str, str], dict[str, str]]],
) -> None:
    """Ports and units at every joint, given each part's (input units, output units).

    ``ports`` holds the units of the hybrid's own inputs and outputs; ``parts`` maps each
    part name to the units of its module's input and output ports (its published manifest).

    Raises:
        GraphError: a wire into or from a port the part does not have, an unconnected input.
        InterfaceMismatch: a wire whose dimension differs from its target port's.
    """
    from modreg.errors import GraphError

    for target in graph.wires:
        part, port = split_ref(target)
        if port not in parts[part][0]:
            raise GraphError(
                f"wire into {target!r}: part {part!r} has no input port {port!r}; its inputs "
                f"are {list(parts[part][0])}"
            )
    for part, (part_inputs, _) in parts.items():
        for port, unit in part_inputs.items():
            if f"{part}.{port}" not in graph.wires:
                raise GraphError(
                    f"input {port!r} ({unit}) of part {part!r} is not connected: wire it"
                )
    units = dict(ports[0]) | {n: c.unit for n, c in graph.constants.items()}
    for part, (_, part_outputs) in parts.items():
        units |= {f"{part}__{port}": unit for port, unit in part_outputs.items()}
    for target, text in graph.wires.items():
        part, port = split_ref(target)
        _check_joint(target, text, parts[part][0][port], units, parts)
    for target, text in graph.outputs.items():
        _check_joint(target, text, ports[1][target], units, parts)


def _check_joint(
    target: str,
    text: str,
    unit: str,
    units: dict[str, str],
    parts: dict[str, tuple[dict[str, str], dict[str, str]]],
) -> None:
    from modreg.errors import DimensionError, GraphError, InterfaceMismatch
    from modreg.spec.equations import expression_dimension
    from modreg.spec.expr import parse_expression

    for part, port in _refs(text):
        if port not in parts[part][1]:
            raise GraphError(
                f"wire into {target!r}: part {part!r} has no output port {port!r}; its outputs "
                f"are {list(parts[part][1])}"
            )
    expr = parse_expression(_WIRE_REF_RE.sub(r"\1__\2", text), list(units))
    if not expr.free_symbols:  # a bare number: a constant in the target's own unit
        return
    base = {s.name: _base_unit(units[s.name]) for s in expr.free_symbols}
    try:
        dimension = expression_dimension(expr, base)
    except DimensionError as exc:
        raise InterfaceMismatch(f"wire into {target!r}: {exc}") from exc
    if dimension != parse_unit(unit).dimensionality:
        raise InterfaceMismatch(
            f"cannot wire {text[:60]!r} into {target} ({unit}): the dimensions differ "
            f"({dict(dimension) or 'dimensionless'} vs {unit})"
        )


def _base_unit(unit: str) -> str:
    """The coherent SI unit of ``unit`` (sums of ``N/kg`` and ``m/s**2`` are consistent)."""
    from modreg.spec.units import unit_registry

    return str(unit_registry().Quantity(1.0, parse_unit(unit)).to_base_units().units)
