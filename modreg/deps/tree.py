"""The dependency tree of a module: its parts at their locked versions, all the way down.

``modreg tree REF`` walks a hybrid's ``requires`` through the locks of the registry (each
node a version and digest, the range its parent accepts); a cycle is refused. The lock,
lineage and dependents code all stand on this one walk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg._content import LOCK_FILE, MANIFEST_FILE
from modreg._text import safe_text
from modreg.deps._draw import box_text, draw
from modreg.errors import DependencyError, ModuleNotFound
from modreg.registry._records import check_identity
from modreg.spec.graph import LockedModule, parse_lock

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = [
    "Node",
    "dependency_tree",
    "hybrid_pins",
    "plot_tree",
    "published_requires",
    "tree_text",
]


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


def hybrid_pins(registry: Registry, ref: str) -> tuple[dict[str, str], dict[str, LockedModule]]:
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
            sub_requires, sub_pins = hybrid_pins(registry, record.ref)
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
        sub_requires, sub_pins = hybrid_pins(registry, record.ref)
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


def published_requires(registry: Registry, refs: Sequence[str]) -> dict[str, dict[str, str]]:
    """``requires`` of each published version.

    Only ``requires`` is needed to filter by range, and a stored manifest was validated at
    publish and is checked against its hash as it is delivered: so the text is read with
    the C YAML loader (safe, no tags) instead of the full manifest model, and every file
    lands in one temporary folder. Both cut the cost per dependent several times over.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="modreg-requires-") as tmp:
        for index, ref in enumerate(refs):
            record = registry.resolve(ref)
            entry = next(e for e in record.files if e.path == MANIFEST_FILE)
            target = Path(tmp) / f"{index}.yaml"
            registry.deliver(entry, target)
            text = target.read_bytes()
            check_identity(record, text)  # a copied record must not lend its requires
            data = yaml.load(text, Loader=loader)
            requires = data.get("requires") if isinstance(data, dict) else None
            found[ref] = {str(k): str(v) for k, v in (requires or {}).items()}
    return found


def plot_tree(node: Node, path: str | Path) -> Path:
    """The dependency tree as a PNG: the root on the left, parts to the right."""
    columns: list[list[str]] = []
    edges: list[tuple[int, int, int, int]] = []

    def place(n: Node, depth: int) -> int:
        while len(columns) <= depth:
            columns.append([])
        columns[depth].append(box_text(n.ref, f"{n.kind} {n.digest[7:19]}"))
        row = len(columns[depth]) - 1
        for child in n.children:
            edges.append((depth, row, depth + 1, place(child, depth + 1)))
        return row

    place(node, 0)
    return draw(columns, edges, Path(path), box_text(f"dependencies of {node.ref}"))
