"""Registry semantics on the local store (the rules every backend keeps are in
test_store_contract.py): ranges with pre-releases, the default registry, pull targets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import modreg
from modreg.errors import (
    InvalidModule,
    ModuleNotFound,
    UsageError,
    VersionExists,
)
from modreg.registry import Registry, _index
from modreg.registry._index import IndexEntry
from modreg.store import MemoryStore

from ._backends import Backend, make_backend
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


# -- yank, yank again, un-yank: a chain of create-only markers -------------------------------
@pytest.fixture(params=["local", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return make_backend(request.param, tmp_path, None)


def test_yank_reasons_and_unyank(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    for version in ("1.0.0", "1.1.0"):
        _publish(registry, tmp_path, version)
    registry.yank("test/net@1.1.0", reason="wrong constant")
    assert registry.resolve("test/net@>=1").version == "1.0.0"
    [row] = registry.list()
    assert (row.latest, row.yanked, row.reasons) == (
        "1.0.0",
        ("1.1.0",),
        {"1.1.0": "wrong constant"},
    )

    registry.yank("test/net@1.1.0")  # again without a reason: nothing to record
    registry.yank("test/net@1.1.0", reason="wrong constant")  # the same reason: nothing either
    state = registry.yank_state("test/net", "1.1.0")
    assert state is not None and (state.yanked, state.reason, state.step) == (
        True,
        "wrong constant",
        1,
    )
    registry.yank("test/net@1.1.0", reason="diverges above 0.8 m")  # a new reason is recorded
    assert registry.list()[0].reasons == {"1.1.0": "diverges above 0.8 m"}

    with pytest.raises(VersionExists, match="was yanked"):  # the same bytes, while yanked
        _publish(registry, tmp_path, "1.1.0")
    registry.unyank("test/net@1.1.0")
    assert registry.versions("test/net") == {"1.0.0": False, "1.1.0": False}
    assert not registry.publish(tmp_path / "src-1.1.0-").created  # un-yanked: a no-op again
    assert registry.resolve("test/net@>=1").version == "1.1.0"
    [row] = registry.list()
    assert (row.latest, row.yanked, row.reasons) == ("1.1.0", (), {})
    registry.unyank("test/net@1.1.0")  # not yanked: a no-op
    registry.unyank("test/net@1.0.0")  # never yanked: a no-op
    assert registry.yank_state("test/net", "1.0.0") is None

    registry.yank("test/net@1.1.0", reason="broken after all")
    state = registry.yank_state("test/net", "1.1.0")
    assert state is not None and (state.yanked, state.reason, state.step) == (
        True,
        "broken after all",
        4,
    )
    assert registry.resolve("test/net").version == "1.0.0"
    assert registry.resolve("test/net@1.1.0").version == "1.1.0"  # an exact pin still works
    report = registry.verify()  # the new marker keys are no strays; the rebuilt index agrees
    assert report.ok, report.problems
    assert registry.list()[0].reasons == {"1.1.0": "broken after all"}


def test_copy_carries_every_yank_step(backend: Backend, tmp_path: Path) -> None:
    source, mirror = backend.registry(), Registry(tmp_path / "mirror")
    _publish(source, tmp_path, "1.0.0")
    source.yank("test/net@1.0.0", reason="bad")
    source.copy("test/net@1.0.0", mirror)
    assert mirror.versions("test/net") == {"1.0.0": True}
    source.unyank("test/net@1.0.0")
    source.copy("test/net@1.0.0", mirror)  # re-running a copy completes it
    assert mirror.versions("test/net") == {"1.0.0": False}
    assert mirror.list()[0].yanked == ()


def test_yank_reason_is_bounded(registry: Registry, tmp_path: Path) -> None:
    _publish(registry, tmp_path, "1.0.0")
    with pytest.raises(UsageError, match="--reason is 1001 characters long: keep it under 1000"):
        registry.yank("test/net@1.0.0", reason="x" * 1001)
    assert registry.yank_state("test/net", "1.0.0") is None


def test_list_filters_by_namespace_and_text(registry: Registry, tmp_path: Path) -> None:
    registry.publish(write_network_module(tmp_path / "a", name="physics/drag", summary="Air drag"))
    registry.publish(write_network_module(tmp_path / "b", name="physics/lift"))
    registry.publish(write_network_module(tmp_path / "c", name="bio/dragonfly"))
    assert [r.name for r in registry.list("physics/")] == ["physics/drag", "physics/lift"]
    assert [r.name for r in registry.list(search="DRAG")] == ["bio/dragonfly", "physics/drag"]
    assert [r.name for r in registry.list("physics/", search="air")] == ["physics/drag"]
    assert registry.list("chem/") == []


ENTRIES = [
    IndexEntry("t/n", "1.0.0", "sha256:a", "network", "s"),  # the publish
    IndexEntry("t/n", "1.0.0", "sha256:a", "network", "s", True),  # a yank written before steps
    IndexEntry("t/n", "1.0.0", "sha256:a", "network", "s", True, "new reason", 2),
    IndexEntry("t/n", "1.0.0", "sha256:a", "network", "s", False, "", 3),  # un-yanked
]


@given(st.permutations(ENTRIES))
def test_the_index_folds_the_highest_yank_step_in_any_order(entries: list[IndexEntry]) -> None:
    # Log keys of writers with skewed clocks arrive in any order: the step decides, not time.
    store = MemoryStore()
    for entry in entries:
        _index.append_entry(store, entry)
    [row] = _index.read_index(store)
    assert (row.yanked, row.yank_step) == (False, 3)
    assert _index.covers({("t/n", "1.0.0"): row}, entries)  # gc may drop the log keys
    assert not _index.covers({("t/n", "1.0.0"): ENTRIES[2]}, entries)  # ... not before step 3
