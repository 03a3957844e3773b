"""Interface policy: what changed between two versions of a module, and the semver bump it needs.

The rules (README, "Interface policy") in one sentence each:

- **major**: anything that can break a caller who wires or feeds the old version — an input
  added, any port removed or renamed, a unit's dimension or scale changed, a shape or dtype
  changed, an input range narrowed, an output range widened or dropped, the kind changed, a
  trainable constant removed or frozen.
- **minor**: the interface still fits every old use but the module computes something else
  or promises more — an output added, an input range widened, an output range narrowed, an
  equation, constant value, network or weights changed, a constant added.
- **patch**: nothing a caller can observe changed — metadata, descriptions, an equation
  rewritten into an algebraically equal form, a unit respelled (``N`` for ``kg*m/s**2``).

Below 1.0.0 the leftmost non-zero part is the breaking one (as cargo does): ``0.x`` to
``0.(x+1)`` counts as a major bump and ``0.x.y`` to ``0.x.(y+1)`` as a minor one.

Port differences are the facts of :mod:`modreg.spec.compat` (the rule every "can NEW stand in
for OLD" question uses); this module only prices them. An equation counts as rewritten only
when :mod:`modreg.check._equivalence` decides so within its budget (sample points, then a
time-capped proof); undecided is reported as such and priced as a changed equation (minor).

Pure: no torch; numpy and sympy only to tell a rewritten equation from a changed one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from packaging.version import Version

from modreg.errors import InterfaceMismatch
from modreg.spec.compat import Difference, Direction, port_differences
from modreg.spec.manifest import Constant, Manifest, Port
from modreg.spec.names import parse_version
from modreg.spec.units import conversion_factor, same_dimension

if TYPE_CHECKING:
    from modreg.check._equivalence import Verdict

__all__ = ["Bump", "Change", "InterfaceReport", "compare", "diff", "version_bump"]


class Bump(IntEnum):
    """Semver levels, ordered so that ``max`` gives the bump a set of changes needs."""

    PATCH = 1
    MINOR = 2
    MAJOR = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Change:
    """One difference between OLD and NEW, the bump it needs and why."""

    kind: str
    where: str
    detail: str
    bump: Bump
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail} -> {self.bump} ({self.why})"


_BREAKS = "callers of the old version break"
_OUTPUTS_CHANGE = "outputs change for the same inputs"


def _port_text(port: Port) -> str:
    shape = list(port.shape) if port.shape else "scalar"
    return f"{port.unit} {shape} {port.dtype}"


def _same_spec(a: Port, b: Port) -> bool:
    """Equal as far as a caller can tell (the description does not count)."""
    return a.model_copy(update={"description": None}) == b.model_copy(update={"description": None})


def _added_removed(
    direction: Direction, old: Mapping[str, Port], new: Mapping[str, Port]
) -> list[Change]:
    """Ports that appear or disappear; a removed+added pair with equal specs is a rename."""
    removed = [n for n in old if n not in new]
    added = [n for n in new if n not in old]
    changes: list[Change] = []
    for name in list(removed):
        twin = next((a for a in added if _same_spec(old[name], new[a])), None)
        if twin is not None:
            removed.remove(name)
            added.remove(twin)
            changes.append(
                Change(
                    f"{direction}-renamed",
                    f"{direction} {name!r}",
                    f"renamed to {twin!r}",
                    Bump.MAJOR,
                    "callers address ports by name",
                )
            )
    for name in removed:
        changes.append(
            Change(
                f"{direction}-removed",
                f"{direction} {name!r}",
                f"removed ({_port_text(old[name])})",
                Bump.MAJOR,
                _BREAKS,
            )
        )
    for name in added:
        bump, why = (
            (Bump.MAJOR, "every caller must now feed it (ports have no default)")
            if direction == "input"
            else (Bump.MINOR, "a new output adds to what old callers use")
        )
        changes.append(
            Change(
                f"{direction}-added",
                f"{direction} {name!r}",
                f"added ({_port_text(new[name])})",
                bump,
                why,
            )
        )
    return changes


# What each port difference (modreg.spec.compat) costs a caller of the old version.
_PORT_BUMPS: dict[str, tuple[Bump, str]] = {
    "unit-dimension": (Bump.MAJOR, "values now measure another quantity"),
    "unit-scale": (Bump.MAJOR, "the same number now means another amount"),
    "unit-spelling": (Bump.PATCH, "respelled, equal in value"),
    "shape": (Bump.MAJOR, "tensors of the old shape no longer fit"),
    "dtype": (Bump.MAJOR, "tensors of the old dtype no longer fit"),
    "range-shifted": (Bump.MAJOR, "values valid before fall outside the new range"),
}
# Inputs may widen (minor) but not narrow; outputs may narrow (minor) but not widen.
_RANGE_BUMPS: dict[tuple[str, str], tuple[Bump, str]] = {
    ("input", "range-narrowed"): (Bump.MAJOR, "inputs valid before are now outside the domain"),
    ("input", "range-widened"): (Bump.MINOR, "accepts everything it did, and more"),
    ("output", "range-widened"): (
        Bump.MAJOR,
        "callers may now see values outside what was promised",
    ),
    ("output", "range-narrowed"): (Bump.MINOR, "a stronger promise that old callers still fit"),
}


def _port_change(difference: Difference) -> Change:
    key = (difference.direction, difference.kind)
    bump, why = _RANGE_BUMPS.get(key) or _PORT_BUMPS[difference.kind]
    return Change(difference.kind, difference.where, difference.detail, bump, why)


def _port_changes(
    direction: Direction, old: Mapping[str, Port], new: Mapping[str, Port]
) -> list[Change]:
    changes = _added_removed(direction, old, new)
    for name in (n for n in old if n in new):
        a, b = old[name], new[name]
        where = f"{direction} {name!r}"
        changes += [_port_change(d) for d in port_differences(direction, name, a, b)]
        if a.description != b.description:
            changes.append(
                Change(
                    "description", where, "description changed", Bump.PATCH, "documentation only"
                )
            )
    return changes


def _in_old_unit(old_unit: str, new_unit: str, values: list[float]) -> list[float]:
    """``values`` given in ``new_unit`` expressed in ``old_unit`` (unchanged if incompatible)."""
    if old_unit == new_unit or not same_dimension(old_unit, new_unit):
        return values
    factor = conversion_factor(new_unit, old_unit)
    return [v * factor for v in values]


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=1e-9) for x, y in zip(a, b, strict=True)
    )


def _as_list(value: float | list[float]) -> list[float]:
    return list(value) if isinstance(value, list) else [value]


def _constant_change(name: str, old: Constant, new: Constant) -> list[Change]:
    """Value and unit are judged together: 1000 m and 1 km are the same constant."""
    where = f"constant {name!r}"
    changes: list[Change] = []
    same_quantity = old.shape == new.shape and _close(
        _as_list(old.value), _in_old_unit(old.unit, new.unit, _as_list(new.value))
    )
    if not same_quantity:
        reshaped = old.trainable and old.shape != new.shape
        bump = Bump.MAJOR if reshaped else Bump.MINOR
        why = "saved trainable state no longer fits" if reshaped else _OUTPUTS_CHANGE
        shown = f"{old.value} {old.unit} -> {new.value} {new.unit}"
        changes.append(Change("constant-value", where, shown, bump, why))
    elif old.unit != new.unit or old.value != new.value:
        shown = f"{old.value} {old.unit} -> {new.value} {new.unit} (the same quantity)"
        changes.append(Change("constant-unit", where, shown, Bump.PATCH, "equal in value"))
    if old.trainable != new.trainable:
        bump, why = (
            (Bump.MAJOR, "hybrids that trained it cannot load their state")
            if old.trainable
            else (Bump.MINOR, "hybrids may now train it")
        )
        shown = f"trainable {old.trainable} -> {new.trainable}"
        changes.append(Change("constant-trainable", where, shown, bump, why))
    return changes


def _constant_changes(old: Manifest, new: Manifest) -> list[Change]:
    changes: list[Change] = []
    for name, const in old.constants.items():
        if name in new.constants:
            changes += _constant_change(name, const, new.constants[name])
        else:
            bump = Bump.MAJOR if const.trainable else Bump.MINOR
            why = (
                "hybrids that trained it cannot load their state"
                if const.trainable
                else "internal to the equation"
            )
            changes.append(Change("constant-removed", f"constant {name!r}", "removed", bump, why))
    for name in new.constants:
        if name not in old.constants:
            changes.append(
                Change(
                    "constant-added",
                    f"constant {name!r}",
                    "added",
                    Bump.MINOR,
                    "outputs may change for the same inputs",
                )
            )
    return changes


def _equivalent(old: Manifest, new: Manifest, port: str) -> Verdict:
    """Whether two equation texts compute the same law (a rewrite), within a budget.

    Inputs are drawn over OLD's declared ranges; see :mod:`modreg.check._equivalence`.
    """
    from modreg.check._equivalence import equivalence
    from modreg.spec.equations import equation_symbols

    assert old.equation is not None and new.equation is not None
    names = list(dict.fromkeys([*equation_symbols(old), *equation_symbols(new)]))
    ranges = {n: p.range for n, p in old.inputs.items()}
    shapes = {n: tuple(p.shape) for n, p in (*new.inputs.items(), *old.inputs.items())}
    shapes |= {n: tuple(c.shape) for n, c in (*new.constants.items(), *old.constants.items())}
    return equivalence(old.equation[port], new.equation[port], names, ranges=ranges, shapes=shapes)


def _equation_changes(old: Manifest, new: Manifest) -> list[Change]:
    if old.equation is None or new.equation is None:
        return []
    changes: list[Change] = []
    for port in (p for p in old.equation if p in new.equation):
        a, b = old.equation[port], new.equation[port]
        if a == b:
            continue
        where = f"equation {port!r}"
        verdict = _equivalent(old, new, port)
        if verdict.outcome == "equal":
            changes.append(
                Change(
                    "equation-rewritten",
                    where,
                    f"{a} -> {b} (algebraically equal: {verdict.how})",
                    Bump.PATCH,
                    "same law, new spelling",
                )
            )
        elif verdict.outcome == "undecided":
            changes.append(
                Change(
                    "equation-undecided",
                    where,
                    f"{a} -> {b} (equality undecided: {verdict.how})",
                    Bump.MINOR,
                    "not proved the same law, so read as a new one",
                )
            )
        else:
            changes.append(
                Change(
                    "equation",
                    where,
                    f"{a} -> {b}",
                    Bump.MINOR,
                    "outputs change for the same inputs",
                )
            )
    return changes


def _body_changes(old: Manifest, new: Manifest, weights_changed: bool) -> list[Change]:
    if old.kind != new.kind:
        return [
            Change(
                "kind",
                "module",
                f"kind {old.kind} -> {new.kind}",
                Bump.MAJOR,
                "trainable state, weights and cost of the old kind no longer apply",
            )
        ]
    changes = _constant_changes(old, new) + _equation_changes(old, new)
    minor = "outputs change for the same inputs"
    if old.network != new.network:
        changes.append(Change("network", "network", "architecture changed", Bump.MINOR, minor))
    if weights_changed:
        changes.append(Change("weights", "weights", "weights changed", Bump.MINOR, minor))
    if old.requires != new.requires or old.graph != new.graph:
        changes.append(Change("graph", "graph", "parts or wiring changed", Bump.MINOR, minor))
    return changes


def _metadata_changes(old: Manifest, new: Manifest) -> list[Change]:
    fields = ("summary", "description", "provenance", "metrics", "checks")
    changed = [f for f in fields if getattr(old, f) != getattr(new, f)]
    return [
        Change("metadata", "manifest", f"{f} changed", Bump.PATCH, "documentation only")
        for f in changed
    ]


def diff(old: Manifest, new: Manifest, *, weights_changed: bool = False) -> list[Change]:
    """Every difference between two versions of one module, each with the bump it needs.

    Args:
        old, new: the two manifests (same module name).
        weights_changed: whether the weights files differ (manifests cannot tell).

    Raises:
        InterfaceMismatch: the manifests name different modules.
    """
    if old.name != new.name:
        raise InterfaceMismatch(
            f"cannot compare {old.ref} with {new.ref}: they are different modules; "
            "the interface policy compares two versions of one name"
        )
    return (
        _port_changes("input", old.inputs, new.inputs)
        + _port_changes("output", old.outputs, new.outputs)
        + _body_changes(old, new, weights_changed)
        + _metadata_changes(old, new)
    )


def version_bump(old: str | Version, new: str | Version) -> Bump | None:
    """The bump from ``old`` to ``new`` (None when ``new`` is not newer).

    Below 1.0.0 the leftmost non-zero part breaks: ``0.1.0 -> 0.2.0`` is major.

    Example:
        >>> version_bump("1.2.3", "1.3.0"), version_bump("0.1.0", "0.2.0")
        (<Bump.MINOR: 2>, <Bump.MAJOR: 3>)
    """
    a = old if isinstance(old, Version) else parse_version(old)
    b = new if isinstance(new, Version) else parse_version(new)
    if b <= a:
        return None
    if b.major != a.major:
        return Bump.MAJOR
    if b.minor != a.minor:
        return Bump.MAJOR if a.major == 0 else Bump.MINOR
    if b.micro != a.micro and a.major == 0:
        return Bump.MINOR
    return Bump.PATCH


@dataclass(frozen=True)
class InterfaceReport:
    """OLD vs NEW: the changes, the bump they need and the bump NEW's version makes."""

    old: str
    new: str
    changes: tuple[Change, ...]
    required: Bump
    actual: Bump | None

    @property
    def ok(self) -> bool:
        return self.actual is not None and self.actual >= self.required

    def summary(self) -> str:
        """One line: the verdict and the numbers behind it."""
        if self.actual is None:
            return f"{self.new} is not newer than {self.old}: bump the version"
        verdict = "ok" if self.ok else "too small"
        worst = [c for c in self.changes if c.bump == self.required and c.bump > Bump.PATCH]
        because = f" because {worst[0].where}: {worst[0].detail}" if worst else ""
        more = f" (+{len(worst) - 1} more)" if len(worst) > 1 else ""
        return (
            f"{self.old} -> {self.new} is a {self.actual} bump; {self.required} needed"
            f"{because}{more}: {verdict}"
        )


def compare(old: Manifest, new: Manifest, *, weights_changed: bool = False) -> InterfaceReport:
    """Diff two versions and judge NEW's version against the bump the changes need.

    Raises:
        InterfaceMismatch: the manifests name different modules.
    """
    changes = tuple(diff(old, new, weights_changed=weights_changed))
    required = max((c.bump for c in changes), default=Bump.PATCH)
    actual = version_bump(old.version, new.version)
    return InterfaceReport(old.ref, new.ref, changes, required, actual)
