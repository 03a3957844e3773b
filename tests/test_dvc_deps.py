"""dvc.yaml declares what each stage runs: every pipelines/ file it imports, and modreg/.

A dependency left out means a change there does not re-run the stage, and the showcase's
reproducibility claim is false. Each stage's imports are derived from its script with ``ast``
(transitively within pipelines/, function-level imports included) and compared with dvc.yaml.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ROOT / "pipelines"
STAGES: dict[str, dict[str, object]] = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _script(cmd: str) -> str:
    """The module a stage's ``python -m pipelines.X`` command runs."""
    words = shlex.split(cmd)
    assert words[:2] == ["python", "-m"], f"stage command is not 'python -m ...': {cmd!r}"
    return words[2]


def _path(module: str) -> Path:
    path = ROOT / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imports(module: str) -> set[str]:
    """Every module name an import statement anywhere in *module* names (absolute only)."""
    tree = ast.parse(_path(module).read_text(), filename=str(_path(module)))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import; dvc.yaml needs absolute names"
            base = node.module or ""
            names.add(base)
            # `from pipelines import x` imports the module pipelines.x when it is one.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _closure(script: str) -> tuple[set[str], bool]:
    """The pipelines/ files *script* loads, transitively, and whether any of them uses modreg."""
    seen: set[str] = set()
    uses_modreg = False
    todo = [script]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in _imports(module):
            uses_modreg |= name.partition(".")[0] == "modreg"
            local = name.partition(".")[0] == "pipelines" and name != "pipelines"
            if local and _path(name).is_file():
                todo.append(name)
    # Running pipelines.x first runs the package's __init__.py.
    files = {_path(module).relative_to(ROOT).as_posix() for module in seen}
    files.add("pipelines/__init__.py")
    return files, uses_modreg


def _declared(stage: dict[str, object]) -> set[str]:
    deps = stage.get("deps", [])
    assert isinstance(deps, list)
    return {str(dep) for dep in deps}


def test_every_stage_runs_a_pipelines_script() -> None:
    assert STAGES, "dvc.yaml has no stages"
    for name, stage in STAGES.items():
        assert _path(_script(str(stage["cmd"]))).is_file(), name


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_match_its_imports(name: str) -> None:
    stage = STAGES[name]
    files, uses_modreg = _closure(_script(str(stage["cmd"])))
    declared = _declared(stage)
    declared_code = {dep for dep in declared if dep.startswith("pipelines/")}
    assert declared_code == files, (
        f"stage {name}: missing {sorted(files - declared_code)}, "
        f"stale {sorted(declared_code - files)}"
    )
    assert ("modreg" in declared) == uses_modreg, f"stage {name}: modreg dep is {not uses_modreg}"


def test_closure_is_transitive() -> None:
    # The derivation itself: reuse imports baseball, and only baseball imports physics.
    assert "pipelines.physics" not in _imports("pipelines.reuse")
    files, uses_modreg = _closure("pipelines.reuse")
    assert "pipelines/baseball.py" in files and "pipelines/physics.py" in files
    assert uses_modreg
