"""The module manifest (``modreg.yaml``): pydantic models, loading and dumping.

Every field is validated on construction (``extra="forbid"`` everywhere), so a
:class:`Manifest` that exists is one modreg can publish: names, versions and units parse,
ranges are ordered, each output has exactly one equation, and equations pass the safe
grammar and the dimension check.
"""

from __future__ import annotations

import keyword
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from modreg._content import MANIFEST_FILE
from modreg.errors import InvalidManifest, ModregError
from modreg.spec.archs import NetworkSpec
from modreg.spec.grammar import RESERVED_NAMES
from modreg.spec.graph import HybridGraph
from modreg.spec.names import parse_name, parse_spec, parse_version
from modreg.spec.units import DIMENSIONLESS, parse_unit

__all__ = [
    "MANIFEST_FILE",
    "CheckSpec",
    "Constant",
    "Manifest",
    "Port",
    "dump_manifest",
    "load_manifest",
    "load_yaml",
    "parse_manifest",
]

MAX_MANIFEST_BYTES = 1 << 20
Kind = Literal["equation", "network", "hybrid"]
DType = Literal["float16", "bfloat16", "float32", "float64"]
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# RESERVED_NAMES (from the grammar table: its functions and pi) may not name a port or
# constant; every other name, E and I included, is the user's.
Scalar = str | int | float | bool | None


def _check_identifier(name: str, what: str) -> str:
    if not _IDENT_RE.fullmatch(name) or name.startswith("__") or keyword.iskeyword(name):
        raise ValueError(
            f"invalid {what} name {name!r}: use a Python-style identifier such as 'm1' or 'v_x'"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"{what} name {name!r} is reserved by the equation grammar: rename it")
    return name


def _trusted(info: ValidationInfo) -> bool:
    """Whether the text was already validated at publish (and is digest-verified now)."""
    return bool(info.context and info.context.get("trusted"))


def _check_unit(text: str, info: ValidationInfo) -> str:
    if not _trusted(info):  # pint is slow to load: pulls of verified bytes skip it
        parse_unit(text)
    return text


class Port(BaseModel):
    """A named, typed value a module consumes or produces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str = DIMENSIONLESS
    shape: Annotated[tuple[Annotated[int, Field(ge=1, le=1 << 20)], ...], Field(max_length=8)] = ()
    dtype: DType = "float32"
    range: tuple[float, float] | None = None
    description: str | None = Field(default=None, max_length=2000)

    _unit = field_validator("unit")(_check_unit)

    @field_validator("range")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is None:
            return None
        low, high = value
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"range {list(value)} must be finite: give [low, high] numbers")
        if not low < high:
            raise ValueError(f"range {list(value)} needs low < high: swap or widen the bounds")
        return value

    @property
    def size(self) -> int:
        """Number of scalars per sample (the product of ``shape``)."""
        return math.prod(self.shape)


class Constant(BaseModel):
    """A named constant of an equation; learnable in a hybrid when ``trainable``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | Annotated[list[float], Field(min_length=1, max_length=1 << 16)]
    unit: str = DIMENSIONLESS
    trainable: bool = False
    description: str | None = Field(default=None, max_length=2000)

    _unit = field_validator("unit")(_check_unit)

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


PortMap = Annotated[dict[str, Port], Field(max_length=256)]
Metric = Literal["rmse", "mae", "max_rel", "r2"]


class CheckSpec(BaseModel):
    """An accuracy check CI runs on this module (``modreg check``), declared under ``checks:``.

    Without ``replaces`` or ``model`` the module alone is held to ``tolerance`` on ``data``;
    with ``replaces`` (``NAME@SPEC``) it must match that module drop-in; with ``model`` and
    ``part`` it must keep the hybrid ``model``'s accuracy when it replaces ``part``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str = Field(min_length=1, max_length=1000)  # CSV or Parquet, relative to the repo root
    metric: Metric = "rmse"
    tolerance: str = "2%"
    replaces: str | None = None
    model: str | None = None
    part: str | None = None
    samples: int = Field(default=2000, ge=0, le=1_000_000)  # uniform draws over input ranges
    seed: int = 0
    units: dict[str, str] = {}  # unit of a data column when it differs from the port's
    wires: dict[str, str] = {}  # wires for inputs the replaced part lacked, e.g. {rho: "1.2"}

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, value: str) -> str:
        from modreg.spec.tolerance import parse_tolerance

        parse_tolerance(value)
        return value

    @field_validator("replaces", "model")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        if value is not None:
            from modreg.spec.names import ModuleRef

            ModuleRef.parse(value)
        return value

    @field_validator("units")
    @classmethod
    def _units(cls, value: dict[str, str]) -> dict[str, str]:
        for unit in value.values():
            parse_unit(unit)
        return value

    @model_validator(mode="after")
    def _target(self) -> CheckSpec:
        if (self.model is None) != (self.part is None):
            raise ValueError("a check names both 'model' (a hybrid) and 'part', or neither")
        if self.model is not None and self.replaces is not None:
            raise ValueError("a check has 'replaces' (drop-in) or 'model'+'part', not both")
        if self.wires and self.part is None:
            raise ValueError("'wires' feed a replaced part: give 'model' and 'part' too")
        return self


class Manifest(BaseModel):
    """The contents of ``modreg.yaml``: identity, interface and body of a module."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    kind: Kind
    summary: str = Field(default="", max_length=300)
    description: str | None = Field(default=None, max_length=20000)
    inputs: PortMap = {}
    outputs: Annotated[PortMap, Field(min_length=1)]
    equation: dict[str, str] | None = None  # length and depth limits: modreg.spec.expr
    constants: Annotated[dict[str, Constant], Field(max_length=256)] = {}
    network: NetworkSpec | None = None
    weights: str | None = None
    requires: dict[str, str] | None = None
    graph: HybridGraph | None = None
    provenance: dict[str, Scalar] = {}
    metrics: dict[str, float] = {}
    checks: Annotated[list[CheckSpec], Field(max_length=32)] = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return parse_name(value)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return str(parse_version(value))

    @field_validator("inputs", "outputs")
    @classmethod
    def _port_names(cls, ports: dict[str, Port]) -> dict[str, Port]:
        for port in ports:
            _check_identifier(port, "port")
        return ports

    @field_validator("constants")
    @classmethod
    def _constant_names(cls, constants: dict[str, Constant]) -> dict[str, Constant]:
        for name in constants:
            _check_identifier(name, "constant")
        return constants

    @field_validator("weights")
    @classmethod
    def _weights_path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+\.safetensors", value):
            raise ValueError(
                f"weights {value!r} must be a plain file name ending in .safetensors "
                "inside the module directory"
            )
        return value

    @field_validator("requires")
    @classmethod
    def _requires(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, spec in (value or {}).items():
            parse_name(name)
            parse_spec(spec)
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Manifest:
        clash = (set(self.inputs) | set(self.outputs)) & set(self.constants)
        if clash:
            raise ValueError(f"names {sorted(clash)} are both ports and constants: rename one")
        both = set(self.inputs) & set(self.outputs)
        if both:
            raise ValueError(f"ports {sorted(both)} are both inputs and outputs: rename one")
        if not (self.kind == "equation" and _trusted(info)):
            _BODY_CHECKS[self.kind](self)
        return self

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


def _fields_absent(manifest: Manifest, kind: str, *fields: str) -> None:
    present = [f for f in fields if getattr(manifest, f)]
    if present:
        raise ValueError(f"a {kind} module cannot have {', '.join(present)}: remove it")


def _check_equation_body(manifest: Manifest) -> None:
    _fields_absent(manifest, "equation", "network", "weights", "requires", "graph")
    if not manifest.equation:
        raise ValueError("an equation module needs 'equation:' with one expression per output")
    missing = [p for p in manifest.outputs if p not in manifest.equation]
    extra = [p for p in manifest.equation if p not in manifest.outputs]
    if missing or extra:
        raise ValueError(
            f"equation must define exactly the outputs {list(manifest.outputs)}: "
            f"missing {missing}, not outputs {extra}"
        )
    from modreg.spec.equations import check_equations

    check_equations(manifest)


def _check_network_body(manifest: Manifest) -> None:
    _fields_absent(manifest, "network", "equation", "constants", "requires", "graph")
    if manifest.network is None or manifest.weights is None:
        raise ValueError(
            "a network module needs 'network:' (e.g. {arch: mlp, hidden: [64, 64]}) and "
            "'weights: weights.safetensors'"
        )
    if not manifest.inputs:
        raise ValueError("a network module needs at least one input port")


def _check_hybrid_body(manifest: Manifest) -> None:
    _fields_absent(manifest, "hybrid", "equation", "network", "constants")
    if not manifest.requires or manifest.graph is None:
        raise ValueError("a hybrid module needs 'requires:' (name -> version range) and 'graph:'")
    unknown = {p.module for p in manifest.graph.parts.values()} - set(manifest.requires)
    if unknown:
        raise ValueError(f"graph parts use modules {sorted(unknown)} missing from 'requires:'")


_BODY_CHECKS = {
    "equation": _check_equation_body,
    "network": _check_network_body,
    "hybrid": _check_hybrid_body,
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate keys instead of keeping the last one."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    """One pass over the keys with a set: linear in their number (a list's count was not)."""
    seen: set[Any] = set()
    duplicates: set[str] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            if key in seen:
                duplicates.add(str(key))
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping names it below
            break
    if duplicates:
        shown = sorted(duplicates)
        more = f" (+{len(shown) - 5} more)" if len(shown) > 5 else ""
        raise InvalidManifest(f"duplicate key(s) {shown[:5]}{more} in YAML: keep one of each")
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def _validation_message(exc: ValidationError, source: str) -> tuple[str, Exception | None]:
    """One line from pydantic's first error, and the modreg error behind it if any."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "manifest"
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, Exception):
        message = str(cause)
    elif first["type"] == "extra_forbidden":
        message = "unknown field: remove it (check its spelling against the manifest format)"
    elif first["type"] == "missing":
        message = "required field is missing"
    else:
        message = first["msg"]
    more = len(exc.errors()) - 1
    tail = f" (+{more} more)" if more > 0 else ""
    return f"{source}: {where}: {message}{tail}", cause if isinstance(cause, Exception) else None


def load_yaml(text: str | bytes, *, source: str) -> Any:
    """Parse YAML safely: no tags that build objects, duplicate keys refused, depth bounded.

    PyYAML composes nested collections recursively, so absurd nesting (``[[[[...``, a
    thousand indentation levels) would end in a RecursionError; it is refused by name here.

    Raises:
        InvalidManifest: malformed YAML, a duplicate key, or nesting too deep to parse.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise InvalidManifest(f"{source}: malformed YAML{where}: {problem}") from exc
    except RecursionError:
        raise InvalidManifest(
            f"{source}: YAML nested too deeply to parse: a manifest nests a few levels, flatten it"
        ) from None


def parse_manifest(
    text: str | bytes, *, source: str = MANIFEST_FILE, trusted: bool = False
) -> Manifest:
    """Validate manifest YAML text.

    ``trusted=True`` is for bytes the registry has just verified against their digest: they
    passed every check at publish, so the costly unit and dimension checks are skipped
    (structure, names and versions are still validated).

    Raises:
        InvalidManifest: malformed YAML, unknown or missing fields, or any invalid value
            (the subclass names the kind of problem: InvalidName, InvalidUnit, ...).
    """
    if len(text) > MAX_MANIFEST_BYTES:
        raise InvalidManifest(f"{source} is larger than {MAX_MANIFEST_BYTES} bytes: trim it")
    data = load_yaml(text, source=source)
    if not isinstance(data, dict):
        raise InvalidManifest(f"{source}: expected a mapping of fields, got {type(data).__name__}")
    try:
        return Manifest.model_validate(data, context={"trusted": trusted})
    except ValidationError as exc:
        message, cause = _validation_message(exc, source)
        error_type = type(cause) if isinstance(cause, ModregError) else InvalidManifest
        raise error_type(message) from exc


def load_manifest(directory: str | Path) -> Manifest:
    """Read and validate ``DIRECTORY/modreg.yaml``.

    Raises:
        InvalidModule: there is no manifest file.
        InvalidManifest: the manifest does not validate.
    """
    from modreg.errors import InvalidModule

    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise InvalidModule(
            f"no {MANIFEST_FILE} in {str(directory)!r}: is this a module directory?"
        )
    return parse_manifest(read_bounded(path, MAX_MANIFEST_BYTES), source=str(path))


def read_bounded(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``path``: enough to refuse an oversized file by length.

    A 3 GB file named ``modreg.yaml`` costs one small read, not 3 GB of memory.
    """
    with path.open("rb") as handle:
        return handle.read(limit + 1)


def dump_manifest(manifest: Manifest) -> str:
    """YAML text of ``manifest`` with fields in their natural order, defaults omitted."""
    data = manifest.model_dump(mode="json", exclude_defaults=True)
    for key in ("kind", "version", "name"):  # identity first, whatever the default rules
        data = {key: getattr(manifest, key)} | data
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
