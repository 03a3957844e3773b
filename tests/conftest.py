"""Shared fixtures: every test gets its own MODREG_HOME and registry."""

from __future__ import annotations

import os
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
    monkeypatch.delenv("MODREG_OFFLINE", raising=False)
    monkeypatch.delenv("MODREG_TRUSTED_KEYS", raising=False)
    # No test reaches a real cloud: no ambient AWS credentials, config or instance metadata.
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real S3-compatible server (SeaweedFS) on 127.0.0.1 for the whole session."""
    from ._s3 import WeedServer

    server = WeedServer(tmp_path_factory.mktemp("s3-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The standard AWS variables pointing at the test server (inherited by subprocesses)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server
