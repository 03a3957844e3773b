"""Registry semantics on the local store (the rules every backend keeps are in
test_store_contract.py): ranges with pre-releases, the default registry, pull targets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import modreg
from modreg.errors import (
    InvalidModule,
    ModuleNotFound,
)
from modreg.registry import Registry

from ._helpers import write_network_module


@pytest.fixture
def registry(registry_path: Path) -> Registry:
    return Registry(registry_path)


def _publish(registry: Registry, tmp_path: Path, version: str, **kw: object) -> str:
    src = write_network_module(
        tmp_path / f"src-{version}-{kw.get('summary', '')}", version=version, **kw
    )  # type: ignore[arg-type]
    return registry.publish(src).digest


def _objects(registry_path: Path) -> list[Path]:
    return sorted(p for p in (registry_path / "objects").rglob("*") if p.is_file())


def test_round_trip_network(registry: Registry, tmp_path: Path) -> None:
    src = write_network_module(tmp_path / "src")
    result = registry.publish(src)
    assert result.created and result.ref == "test/net@1.0.0"
    module = registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert module.digest == result.digest
    for name in ("modreg.yaml", "weights.safetensors"):
        assert (tmp_path / "out" / name).read_bytes() == (src / name).read_bytes()
    assert module.interface.describe() == "(x: m[2]) -> (y: s)"


def test_module_api_uses_env_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODREG_REGISTRY", str(tmp_path / "env-registry"))
    result = modreg.publish(write_network_module(tmp_path / "src"))
    module = modreg.pull("test/net")
    assert module.digest == result.digest
    assert (tmp_path / "env-registry" / "records").is_dir()
    assert module.path.is_relative_to(tmp_path / "modreg-home" / "cache")


def test_range_resolution(registry: Registry, tmp_path: Path) -> None:
    for version in ["1.0.0", "1.2.0", "1.10.0", "2.0.0", "3.0.0rc1"]:
        _publish(registry, tmp_path, version)
    assert registry.resolve("test/net").version == "2.0.0"
    assert registry.resolve("test/net@latest").version == "2.0.0"
    assert registry.resolve("test/net@>=1,<2").version == "1.10.0"
    assert registry.resolve("test/net@~=1.2").version == "1.10.0"
    assert registry.resolve("test/net@1.2.0").version == "1.2.0"
    assert registry.resolve("test/net@==3.0.0rc1").version == "3.0.0rc1"
    assert registry.resolve("test/net@>=2.1.0rc0").version == "3.0.0rc1"


def test_not_found_lists_versions(registry: Registry, tmp_path: Path) -> None:
    _publish(registry, tmp_path, "1.0.0")
    with pytest.raises(ModuleNotFound, match=r"available: 1\.0\.0"):
        registry.resolve("test/net@>=2")
    with pytest.raises(ModuleNotFound, match="no module named 'test/other'"):
        registry.resolve("test/other")


def test_list_is_sorted_and_counts(registry: Registry, tmp_path: Path) -> None:
    _publish(registry, tmp_path, "1.0.0", name="b/net")
    _publish(registry, tmp_path, "1.0.0", name="a/net")
    _publish(registry, tmp_path, "1.1.0", name="a/net")
    rows = registry.list()
    assert [(r.name, r.latest, r.versions) for r in rows] == [
        ("a/net", "1.1.0", ("1.0.0", "1.1.0")),
        ("b/net", "1.0.0", ("1.0.0",)),
    ]


def test_pull_into_existing_dir(registry: Registry, tmp_path: Path) -> None:
    _publish(registry, tmp_path, "1.0.0")
    registry.pull("test/net@1.0.0", to=tmp_path / "out")
    registry.pull("test/net@1.0.0", to=tmp_path / "out")  # same content: fine
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_text("x")
    with pytest.raises(InvalidModule, match="already exists"):
        registry.pull("test/net@1.0.0", to=tmp_path / "other")
    assert (tmp_path / "other" / "file").read_text() == "x"


def test_damaged_cache_is_refetched(registry: Registry, tmp_path: Path) -> None:
    _publish(registry, tmp_path, "1.0.0")
    module = registry.pull("test/net@1.0.0")
    (module.path / "weights.safetensors").write_bytes(b"junk")
    again = registry.pull("test/net@1.0.0")
    assert again.path == module.path
    assert (again.path / "weights.safetensors").stat().st_size > 4


def test_verify_rebuilds_index_and_cleans_temps(
    registry: Registry, tmp_path: Path, registry_path: Path
) -> None:
    _publish(registry, tmp_path, "1.0.0")
    shutil.rmtree(registry_path / "index")
    (registry_path / "tmp" / f"999999999-{'d' * 32}.tmp").write_bytes(b"partial")  # pid gone
    assert registry.list() == []
    report = registry.verify()
    assert report.ok and report.temporaries_removed == 1
    assert [r.name for r in registry.list()] == ["test/net"]
