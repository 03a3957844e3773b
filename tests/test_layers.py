"""The package is layered: each part imports only the parts below it, never up, never round.

The layers are the ones ``docs/architecture.md`` draws. Every import counts, at module level
or inside a function (a function-level import hides a cycle, it does not remove it); only
imports under ``if TYPE_CHECKING:`` (annotations) do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modreg

ROOT = Path(modreg.__file__).parent

# Bottom first. A part is a sub-package (``registry``) or a top-level module (``_files``).
LAYERS: list[set[str]] = [
    {"errors"},
    {"_content", "_text", "_config", "_extras", "_csv", "_process"},
    {"spec", "store", "trust"},
    {"module", "_files"},
    {"registry"},
    {"runtime"},
    {"_cost", "_energy", "capturing"},
    {"check"},
    {"distill"},
    {"deps", "signing", "mlflow", "tracking"},
    {"cli", "_api", "__init__", "__main__"},
]
# Parts of one layer that may use each other, in this direction only.
SIDEWAYS = {
    ("module", "_files"),
    ("_cost", "_energy"),
    ("mlflow", "tracking"),
    ("__init__", "_api"),
    ("__main__", "cli"),
}
# Bottom parts that must know nothing of each other.
INDEPENDENT = {"spec", "store", "trust"}


def _part(module: str) -> str:
    """``modreg.registry._index`` -> ``registry``; ``modreg._files`` -> ``_files``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[tuple[str, str], list[str]]:
    """(importer part, imported part) -> where, for every import between two parts."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(("modreg", *path.relative_to(ROOT).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        checking = {
            id(node)
            for block in tree.body
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.dump(block.test)
            for node in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in checking:
                continue
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "modreg":
                    targets = [f"modreg.{alias.name}" for alias in node.names]
                elif node.module.startswith("modreg."):
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("modreg.")]
            for target in targets:
                a, b = _part(module), _part(target)
                if a != b:
                    found.setdefault((a, b), []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def _layer(part: str) -> int:
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(
        f"modreg/{part} is in no layer: add it to LAYERS and the architecture page"
    )


def test_every_part_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()}
    parts = {p for p in parts if not p.startswith(".") and p not in {"py", "__pycache__"}}
    for part in sorted(parts - {"py"}):
        if (ROOT / part).is_dir() or (ROOT / f"{part}.py").is_file():
            _layer(part)


def test_nothing_imports_upward_or_sideways() -> None:
    wrong = []
    for (a, b), where in sorted(_imports().items()):
        if _layer(b) > _layer(a) or (_layer(b) == _layer(a) and (a, b) not in SIDEWAYS):
            wrong.append(f"{a} -> {b} ({', '.join(where[:3])})")
    assert wrong == [], "imports against the layers:\n" + "\n".join(wrong)


def test_the_bottom_parts_know_nothing_of_each_other() -> None:
    crossing = [(a, b) for a, b in _imports() if a in INDEPENDENT and b in INDEPENDENT]
    assert crossing == []


def test_the_store_knows_nothing_of_modules() -> None:
    """A store keeps opaque bytes: no key layout, no records, no manifests."""
    below = {b for (a, b) in _imports() if a == "store"}
    assert below <= LAYERS[0] | LAYERS[1], below
