"""Heavy packages stay lazy: what a bare import and ``modreg --help`` load, in a fresh process.

``modreg --help`` must stay instant and ``modreg.spec`` is the torch-free half of the package,
so these tests run each entry point in a new interpreter and read its ``sys.modules``.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

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


def test_help_loads_no_heavy_package() -> None:
    statement = "import runpy; runpy.run_module('modreg', run_name='__main__')"
    loaded = _loaded(statement, argv=("modreg", "--help"))
    assert "typer" in loaded  # the command really ran
    assert loaded & set(HEAVY) == set()


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
