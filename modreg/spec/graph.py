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
