"""Heavy packages stay lazy: what a bare import and ``modreg --help`` load, in a fresh process.

``modreg --help`` must stay instant and ``modreg.spec`` is the torch-free half of the package,
so these tests run each entry point in a new interpreter and read its ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import modreg
import modreg.spec

HEAVY = ("torch", "sympy", "pint", "pydantic", "mlflow", "dvc", "boto3", "onnx")

_REPORT = """
import json, sys
sys.argv = {argv!r}
try:
    {statement}
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
print(json.dumps(sorted({{name.partition(".")[0] for name in sys.modules}})))
"""


def _loaded(statement: str, argv: tuple[str, ...] = ("python",)) -> set[str]:
    """Run *statement* in a fresh interpreter and return the top-level packages it loaded."""
    code = _REPORT.format(statement=statement, argv=list(argv))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def _spec_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(modreg.spec.__path__, "modreg.spec."))


def test_import_modreg_loads_no_heavy_package() -> None:
    assert _loaded("import modreg") & set(HEAVY) == set()


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_loads_no_heavy_package(flag: str) -> None:
    statement = "import runpy; runpy.run_module('modreg', run_name='__main__')"
    loaded = _loaded(statement, argv=("modreg", flag))
    assert "typer" in loaded  # the command really ran
    assert loaded & set(HEAVY) == set()


def test_import_spec_loads_no_heavy_package() -> None:
    assert _loaded("import modreg.spec") & set(HEAVY) == set()


def test_spec_package_is_listed() -> None:
    # Guards the parametrisation below against an empty list (a test that cannot fail).
    assert {"modreg.spec.manifest", "modreg.spec.units", "modreg.spec.compat"} <= set(
        _spec_modules()
    )


@pytest.mark.parametrize("module", _spec_modules())
def test_spec_modules_leave_torch_out(module: str) -> None:
    # spec is pure data: sympy (the expression translator) and pydantic are allowed; the
    # runtime, tracking, storage and unit-evaluation packages are not.
    loaded = _loaded(f"import {module}")
    assert loaded & {"torch", "mlflow", "dvc", "boto3", "onnx", "pint"} == set()


def _runtime_imports() -> dict[str, tuple[set[str], set[str]]]:
    """Per runtime module: the runtime modules it imports at module level, and inside functions.

    Imports under ``if TYPE_CHECKING:`` are for annotations only and do not count.
    """
    root = Path(modreg.__file__).parent / "runtime"  # read, not imported: no torch here
    graph: dict[str, tuple[set[str], set[str]]] = {}
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        checking = [
            n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n.test)
        ]
        annotations_only = {id(node) for block in checking for node in ast.walk(block)}
        top, inner = set(), set()
        for node in ast.walk(tree):
            module = getattr(node, "module", None) or ""
            if not isinstance(node, ast.ImportFrom) or not module.startswith("modreg.runtime."):
                continue
            if id(node) not in annotations_only:
                (top if node in tree.body else inner).add(module.rpartition(".")[2])
        graph[path.stem] = (top, inner)
    return graph


# The builder's files: they once imported each other through ten function-level imports.
BUILDER = {"_build", "_hybrid", "_hybrid_io", "_replace", "_parts", "_base", "_wiring"}


def test_builder_imports_at_module_level_only() -> None:
    graph = _runtime_imports()
    assert set(graph) >= BUILDER
    inner = {name: sorted(graph[name][1]) for name in BUILDER if graph[name][1]}
    assert inner == {}, "function-level imports hide an import cycle; import at module level"


def test_runtime_import_graph_has_no_cycle() -> None:
    graph = {name: top for name, (top, _) in _runtime_imports().items()}
    assert {"_hybrid", "_build", "_replace", "_hybrid_io", "_parts"} <= set(graph)
    done: set[str] = set()
    while len(done) < len(graph):
        ready = {n for n, deps in graph.items() if n not in done and deps <= done}
        assert ready, f"import cycle among {sorted(set(graph) - done)}"
        done |= ready
