"""Where a module comes from and what uses it: the dependency tree and the lineage.

``modreg tree REF`` walks a hybrid's ``requires`` through the locks of the registry (each
node a version and digest, the range its parent accepts); a cycle is refused. ``modreg
lineage REF`` reads ``provenance:`` — the teacher a law was distilled from (name and
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

from modreg._content import LOCK_FILE
from modreg._text import plain_figure_text, safe_text
from modreg.errors import DependencyError, ModuleNotFound
from modreg.spec.graph import LockedModule, parse_lock
from modreg.spec.names import parse_spec

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = [
    "Lineage",
    "Node",
    "User",
    "dependency_tree",
    "lineage",
    "lineage_text",
    "plot_lineage",
    "plot_tree",
    "tree_text",
    "users_of",
]

# provenance keys, grouped by what they say about the module's origin
_TEACHER = ("distilled_from", "teacher_digest")
_DATA = ("dataset", "dataset_sha256", "data", "distilled_digest")
_RUN = ("mlflow_run_id", "mlflow_run", "mlflow_run_key", "mlflow_experiment", "stage")
_TOOL = ("tool", "modreg_version")


@dataclass
class Node:
    """One module in a dependency tree: its pinned version and digest, and its parts."""

    name: str
    version: str
    digest: str
    kind: str
    requires: str | None = None  # the range the parent accepts (None at the root)
    children: list[Node] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "kind": self.kind,
            "requires": self.requires,
            "children": [c.to_json() for c in self.children],
        }


def _hybrid_pins(registry: Registry, ref: str) -> tuple[dict[str, str], dict[str, LockedModule]]:
    """``requires`` and lock pins of a published hybrid."""
    module = registry.pull(ref)
    requires = dict(module.manifest.requires or {})
    lock = parse_lock(module.file(LOCK_FILE).read_bytes(), source=f"{ref}:{LOCK_FILE}")
    return requires, dict(lock.modules)


def _children(
    registry: Registry,
    requires: Mapping[str, str],
    pins: Mapping[str, LockedModule],
    owner: str,
    path: tuple[str, ...],
) -> list[Node]:
    nodes = []
    for name, spec in sorted(requires.items()):
        if name in path:
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise DependencyError(
                f"cycle in requires: {cycle}; a module cannot depend on itself: "
                "drop one of these requires"
            )
        pin = pins.get(name)
        if pin is None:
            raise DependencyError(f"{owner}: {LOCK_FILE} has no pin for {name}: run 'modreg lock'")
        try:
            record = registry.resolve(f"{name}@{pin.version}")
        except ModuleNotFound:
            raise DependencyError(
                f"{owner}: {LOCK_FILE} pins {name}@{pin.version}, which the registry does not have"
            ) from None
        if record.digest != pin.digest:
            raise DependencyError(
                f"{owner}: {LOCK_FILE} pins {name}@{pin.version} as {pin.digest[:23]}... but the "
                f"registry holds {record.digest[:23]}...: that digest is not in the registry"
            )
        node = Node(name, record.version, record.digest, record.kind, spec)
        if record.kind == "hybrid":
            sub_requires, sub_pins = _hybrid_pins(registry, record.ref)
            node.children = _children(registry, sub_requires, sub_pins, record.ref, (*path, name))
        nodes.append(node)
    return nodes


def dependency_tree(
    registry: Registry,
    ref: str,
    pins: Mapping[str, LockedModule] | None = None,
    requires: Mapping[str, str] | None = None,
) -> Node:
    """The tree of ``ref``'s dependencies, each at its locked version.

    Args:
        ref: a published ``NAME@SPEC``; or, with ``pins`` (and ``requires``), the name of an
            unpublished hybrid folder whose lock is being written.

    Raises:
        DependencyError: a cycle in requires, or a pin the registry does not hold.
    """
    if pins is not None:
        name, _, version = ref.partition("@")
        root = Node(name, version, "", "hybrid")
        wanted = requires if requires is not None else dict.fromkeys(pins, "")
        root.children = _children(registry, wanted, pins, ref, (name,))
        return root
    record = registry.resolve(ref)
    root = Node(record.name, record.version, record.digest, record.kind)
    if record.kind == "hybrid":
        sub_requires, sub_pins = _hybrid_pins(registry, record.ref)
        root.children = _children(registry, sub_requires, sub_pins, record.ref, (record.name,))
    return root


def tree_text(node: Node, prefix: str = "") -> list[str]:
    """``showcase/baseball@0.1.0 sha256:ab12...`` with ``├──``/``└──`` branches below.

    Lines are terminal-safe (:func:`~modreg._text.safe_text`).
    """
    lines = [f"{node.ref}  {node.kind}  {node.digest[:19]}..."] if not prefix else []
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        branch, extend = ("└── ", "    ") if last else ("├── ", "│   ")
        spec = f" (requires {child.requires})" if child.requires else ""
        lines.append(f"{prefix}{branch}{child.ref}{spec}  {child.kind}  {child.digest[:19]}...")
        lines.extend(tree_text(child, prefix + extend) if child.children else [])
    return [safe_text(line) for line in lines]


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
    from modreg.dependents import published_requires

    wanted = Version(version)
    pairs: list[tuple[str, str]] = registry.dependents(name)
    users = []
    for ref, requires in published_requires(registry, [f"{n}@{v}" for n, v in pairs]).items():
        spec = requires.get(name)
        if spec is None or not parse_spec(spec).admits(wanted, yanked=False):
            continue
        try:
            locked: str | None = _hybrid_pins(registry, ref)[1][name].version
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


# -- pictures ----------------------------------------------------------------------------------
def _draw(
    columns: list[list[str]], edges: list[tuple[int, int, int, int]], path: Path, title: str
) -> Path:
    """Boxes in columns (left to right) joined by arrows ``(col, row) -> (col, row)``.

    Each label is lines of module text, shown as written (:func:`_label`, no math text).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = max(len(c) for c in columns)
    # The picture is modreg's own: a user's text.usetex would hand module text to LaTeX.
    with matplotlib.rc_context({"text.usetex": False}):
        fig, ax = plt.subplots(figsize=(3.4 * len(columns) + 1, 1.1 * height + 1.2))
        try:
            _boxes(ax, columns, edges, height)
            plain_figure_text(ax.set_title(title, fontsize=10))
            fig.tight_layout()
            fig.savefig(path, dpi=120)
        finally:
            plt.close(fig)
    return path


def _boxes(
    ax: Any, columns: list[list[str]], edges: list[tuple[int, int, int, int]], height: int
) -> None:
    def where(col: int, row: int) -> tuple[float, float]:
        size = len(columns[col])
        return col * 3.4, (height - 1) / 2 - row + (size - 1) / 2

    ax.set_axis_off()
    box = {"boxstyle": "round", "facecolor": "#e8eef7", "edgecolor": "#4a6fa5"}
    arrow = {"arrowstyle": "->", "color": "#555", "shrinkA": 38, "shrinkB": 38}
    for col, labels in enumerate(columns):
        for row, label in enumerate(labels):
            x, y = where(col, row)
            plain_figure_text(ax.text(x, y, label, ha="center", va="center", fontsize=8, bbox=box))
    for col_a, row_a, col_b, row_b in edges:
        ax.annotate("", xy=where(col_b, row_b), xytext=where(col_a, row_a), arrowprops=arrow)
    ax.set_xlim(-1.8, 3.4 * (len(columns) - 1) + 1.8)
    ax.set_ylim(-0.8, height - 0.2)


def _label(*lines: str) -> str:
    """A box's text: each line (module text, untrusted) made safe, then stacked."""
    return "\n".join(safe_text(line) for line in lines)


def plot_tree(node: Node, path: str | Path) -> Path:
    """The dependency tree as a PNG: the root on the left, parts to the right."""
    columns: list[list[str]] = []
    edges: list[tuple[int, int, int, int]] = []

    def place(n: Node, depth: int) -> int:
        while len(columns) <= depth:
            columns.append([])
        columns[depth].append(_label(n.ref, f"{n.kind} {n.digest[7:19]}"))
        row = len(columns[depth]) - 1
        for child in n.children:
            edges.append((depth, row, depth + 1, place(child, depth + 1)))
        return row

    place(node, 0)
    return _draw(columns, edges, Path(path), _label(f"dependencies of {node.ref}"))


def plot_lineage(item: Lineage, path: str | Path) -> Path:
    """Origins -> the module -> its users, as a PNG."""
    origins = [_label("teacher", item.teacher)] if item.teacher else []
    origins += [
        _label(label, next(iter(group.values()))[:24])
        for label, group in (("data", item.data), ("run", item.run), ("tool", item.tool))
        if group
    ]
    origins += [_label("part", p.ref) for p in item.parts]
    users = [_label("used by", u.ref) for u in item.users]
    columns = [c for c in (origins, [_label(item.ref, item.kind)], users) if c]
    middle = 1 if origins else 0
    edges = [(0, r, 1, 0) for r in range(len(origins))]
    edges += [(middle, 0, middle + 1, r) for r in range(len(users))]
    return _draw(columns, edges, Path(path), _label(f"lineage of {item.ref}"))
