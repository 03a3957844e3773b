"""Where a module comes from and what uses it: its lineage.

``modreg lineage REF`` reads ``provenance:`` — the teacher a law was distilled from (name and
digest, followed into the registry when it is there), the data (sha256), the MLflow run,
the modreg version — and adds the hybrids whose ranges admit this version, from the
registry's reverse-dependency index. Both render as text, JSON or a PNG.

Provenance is free text from a manifest: the text lines and the figures show it through
:mod:`modreg._text` (control and bidi characters escaped, no math text in a figure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from modreg._text import safe_text
from modreg.deps._draw import box_text, draw
from modreg.deps.tree import Node, dependency_tree, hybrid_pins, published_requires
from modreg.errors import DependencyError, ModuleNotFound
from modreg.spec.names import parse_spec

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = ["Lineage", "User", "lineage", "lineage_text", "plot_lineage", "users_of"]

# provenance keys, grouped by what they say about the module's origin
_TEACHER = ("distilled_from", "teacher_digest")
_DATA = ("dataset", "dataset_sha256", "data", "distilled_digest")
_RUN = ("mlflow_run_id", "mlflow_run", "mlflow_run_key", "mlflow_experiment", "stage")
_TOOL = ("tool", "modreg_version")


# -- lineage -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class User:
    """A published version that depends on the module, by a range admitting its version."""

    ref: str
    requires: str
    locked: str | None  # the version its lock pins (None: lock unreadable)


@dataclass
class Lineage:
    """A module's origin (teacher, data, run, tool) and the hybrids that use it."""

    ref: str
    digest: str
    kind: str
    published: str
    teacher: str | None = None
    teacher_digest: str | None = None
    teacher_in_registry: bool | None = None
    data: dict[str, str] = field(default_factory=dict)
    run: dict[str, str] = field(default_factory=dict)
    tool: dict[str, str] = field(default_factory=dict)
    other: dict[str, str] = field(default_factory=dict)
    parts: list[Node] = field(default_factory=list)
    upstream: Lineage | None = None  # the teacher's own lineage, when it is published
    users: list[User] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "kind": self.kind,
            "published": self.published,
            "teacher": {
                "ref": self.teacher,
                "digest": self.teacher_digest,
                "in_registry": self.teacher_in_registry,
            }
            if self.teacher
            else None,
            "data": self.data,
            "run": self.run,
            "tool": self.tool,
            "other": self.other,
            "parts": [p.to_json() for p in self.parts],
            "upstream": self.upstream.to_json() if self.upstream else None,
            "users": [u.__dict__ for u in self.users],
        }


def users_of(registry: Registry, name: str, version: str) -> list[User]:
    """Published dependents whose range for ``name`` admits ``version`` (reverse index)."""
    wanted = Version(version)
    pairs: list[tuple[str, str]] = registry.dependents(name)
    users = []
    for ref, requires in published_requires(registry, [f"{n}@{v}" for n, v in pairs]).items():
        spec = requires.get(name)
        if spec is None or not parse_spec(spec).admits(wanted, yanked=False):
            continue
        try:
            locked: str | None = hybrid_pins(registry, ref)[1][name].version
        except (KeyError, DependencyError):
            locked = None
        users.append(User(ref, spec, locked))
    return users


def _teacher(registry: Registry, item: Lineage, depth: int) -> None:
    if item.teacher is None:
        return
    try:
        record = registry.resolve(item.teacher)
    except (ModuleNotFound, ValueError):
        item.teacher_in_registry = False
        return
    matches = item.teacher_digest in (None, record.digest)
    item.teacher_in_registry = matches
    if matches and depth < 8:  # teachers of teachers, never around a loop forever
        item.upstream = lineage(registry, record.ref, with_users=False, _depth=depth + 1)


def lineage(registry: Registry, ref: str, *, with_users: bool = True, _depth: int = 0) -> Lineage:
    """The lineage of a published version: provenance upstream, dependents downstream.

    Raises:
        ModuleNotFound: ``ref`` resolves to nothing.
    """
    record, manifest = registry.manifest(ref)
    provenance = {k: str(v) for k, v in manifest.provenance.items()}
    item = Lineage(record.ref, record.digest, record.kind, record.published)
    item.teacher = provenance.pop("distilled_from", None)
    item.teacher_digest = provenance.pop("teacher_digest", None)
    for group, keys in ((item.data, _DATA), (item.run, _RUN), (item.tool, _TOOL)):
        group.update({k: provenance.pop(k) for k in keys if k in provenance})
    item.other = provenance
    _teacher(registry, item, _depth)
    if record.kind == "hybrid":
        item.parts = dependency_tree(registry, record.ref).children
    if with_users:
        item.users = users_of(registry, record.name, record.version)
    return item


def _group(label: str, values: Mapping[str, str]) -> list[str]:
    return [f"{label:<9}{', '.join(f'{k}={v}' for k, v in values.items())}"] if values else []


def lineage_text(item: Lineage, indent: str = "") -> list[str]:
    """Lines from the oldest origin to the users, indented under each teacher.

    Lines are terminal-safe: provenance is untrusted (:func:`~modreg._text.safe_text`).
    """
    lines = [f"{indent}{item.ref}  {item.kind}  {item.digest[:19]}...  published {item.published}"]
    inner = indent + "  "
    if item.teacher:
        state = {True: "in registry", False: "not in registry", None: "unchecked"}
        digest = f" {item.teacher_digest[:19]}..." if item.teacher_digest else ""
        where = state[item.teacher_in_registry]
        lines.append(f"{inner}{'teacher':<9}{item.teacher}{digest} ({where})")
        if item.upstream is not None:
            lines.extend(lineage_text(item.upstream, inner + "  "))
    for label, group in (("data", item.data), ("run", item.run), ("tool", item.tool)):
        lines.extend(inner + line for line in _group(label, group))
    lines.extend(inner + line for line in _group("other", item.other))
    for part in item.parts:
        lines.append(f"{inner}{'part':<9}{part.ref} (requires {part.requires})")
    for user in item.users:
        locked = f", locked to {user.locked}" if user.locked else ""
        lines.append(f"{inner}{'used by':<9}{user.ref} (requires {user.requires}{locked})")
    if not indent and not item.users:
        lines.append(f"{inner}{'used by':<9}nothing published yet")
    return [safe_text(line) for line in lines]


def plot_lineage(item: Lineage, path: str | Path) -> Path:
    """Origins -> the module -> its users, as a PNG."""
    origins = [box_text("teacher", item.teacher)] if item.teacher else []
    origins += [
        box_text(label, next(iter(group.values()))[:24])
        for label, group in (("data", item.data), ("run", item.run), ("tool", item.tool))
        if group
    ]
    origins += [box_text("part", p.ref) for p in item.parts]
    users = [box_text("used by", u.ref) for u in item.users]
    columns = [c for c in (origins, [box_text(item.ref, item.kind)], users) if c]
    middle = 1 if origins else 0
    edges = [(0, r, 1, 0) for r in range(len(origins))]
    edges += [(middle, 0, middle + 1, r) for r in range(len(users))]
    return draw(columns, edges, Path(path), box_text(f"lineage of {item.ref}"))
