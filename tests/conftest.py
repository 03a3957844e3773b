"""Shared fixtures: every test gets its own MODREG_HOME and registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "modules"


@pytest.fixture(autouse=True)
def modreg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point MODREG_HOME at a temp dir so no test touches the user's registry."""
    home = tmp_path / "modreg-home"
    monkeypatch.setenv("MODREG_HOME", str(home))
    monkeypatch.delenv("MODREG_REGISTRY", raising=False)
    monkeypatch.delenv("MODREG_DEBUG", raising=False)
    return home


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def module_copy(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy an example module from modules/ into a temp dir (so tests may edit it)."""

    def copy(name: str) -> Path:
        target = tmp_path / "src" / name
        shutil.copytree(MODULES / name, target)
        return target

    return copy
