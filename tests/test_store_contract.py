"""The registry contract, held against every backend: local directory, memory, real S3.

Immutability, idempotence, exclusive records, yanks, the index, tampering, gc and the
registry marker are promises of the registry, not of one backend: each test here runs on
all of them (``BACKENDS``), through the same public API.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import modreg.registry._maintenance as maintenance
from modreg.errors import (
    IntegrityError,
    InvalidVersion,
    ModuleNotFound,
    NotARegistry,
    StoreError,
    VersionExists,
)
from modreg.registry import Registry, _protocol
from modreg.registry._keys import GC_LOCK, INDEX_LOG, INDEX_SNAPSHOT, object_key, record_key
from modreg.registry._records import VersionRecord
from modreg.store import MemoryStore

from ._backends import BACKENDS, Backend, make_backend
from ._helpers import write_network_module


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    server = request.getfixturevalue("s3_env") if request.param == "s3" else None
    return make_backend(request.param, tmp_path, server)


def _src(tmp_path: Path, tag: str, **kw: object) -> Path:
    return write_network_module(tmp_path / f"src-{tag}", **kw)  # type: ignore[arg-type]


def _weights(record: VersionRecord) -> str:
    return next(f.sha256 for f in record.files if f.path == "weights.safetensors")


# -- immutability and idempotence ------------------------------------------------------------
def test_round_trip_bytes_and_digest(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    src = _src(tmp_path, "a")
    result = registry.publish(src)
    assert result.created and result.ref == "test/net@1.0.0"
    module = registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert module.digest == result.digest
    for name in ("modreg.yaml", "weights.safetensors"):
        assert (tmp_path / "out" / name).read_bytes() == (src / name).read_bytes()


def test_same_bytes_noop_other_bytes_refused(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    first = registry.publish(_src(tmp_path, "a"))
    again = registry.publish(_src(tmp_path, "b"))
    assert not again.created and again.digest == first.digest
    keys = backend.stored_keys()
    with pytest.raises(VersionExists, match="bump the version"):
        registry.publish(_src(tmp_path, "c", seed=1))
    assert backend.stored_keys() == keys  # nothing new is stored by a refused publish
    assert registry.resolve("test/net@1.0.0").digest == first.digest


def test_racing_publishers_exactly_one_wins(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    sources = [_src(tmp_path, str(i), seed=i) for i in range(8)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(sources))

    def publish(source: Path) -> None:
        barrier.wait()
        try:
            outcomes.append("won" if backend.registry().publish(source).created else "same")
        except VersionExists:
            outcomes.append("refused")

    threads = [threading.Thread(target=publish, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(outcomes) == {"won": 1, "refused": 7}
    record = registry.resolve("test/net@1.0.0")
    registry.pull(record.ref, to=tmp_path / "out")
    assert registry.verify().ok


# -- ranges, yanks, index --------------------------------------------------------------------
def test_ranges_and_yanks(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    for version in ["1.0.0", "1.2.0", "1.10.0"]:
        registry.publish(_src(tmp_path, version, version=version))
    assert registry.resolve("test/net").version == "1.10.0"
    assert registry.resolve("test/net@~=1.2").version == "1.10.0"
    registry.yank("test/net@1.10.0", "broken")
    assert registry.resolve("test/net@>=1,<2").version == "1.2.0"
    assert registry.resolve("test/net@1.10.0").version == "1.10.0"  # exact pin still works
    [row] = registry.list()
    assert (row.latest, row.yanked) == ("1.2.0", ("1.10.0",))
    with pytest.raises(VersionExists, match="yanked"):
        registry.publish(_src(tmp_path, "again", version="1.10.0"))
    with pytest.raises(InvalidVersion):
        registry.yank("test/net@>=1")
    with pytest.raises(ModuleNotFound, match=r"available: 1\.0\.0, 1\.2\.0, 1\.10\.0 \(yanked\)"):
        registry.resolve("test/net@>=3")


def test_index_rebuilt_by_verify(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    registry.publish(_src(tmp_path, "b", name="other/net"))
    for key in backend.stored_keys():
        if key.startswith(("index/", "index.jsonl")):
            backend.delete_raw(key)
    assert registry.list() == []
    assert registry.verify().ok
    assert [r.name for r in registry.list()] == ["other/net", "test/net"]


def test_verify_keeps_a_version_committed_while_it_scans(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    late = _src(tmp_path, "late", version="2.0.0")
    classify = maintenance._classify
    published: list[str] = []

    def publish_mid_scan(*args: object) -> None:
        if not published:
            published.append(backend.registry().publish(late).ref)
        classify(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(maintenance, "_classify", publish_mid_scan)
    registry.verify()
    assert published == ["test/net@2.0.0"]
    [row] = registry.list()
    assert row.versions == ("1.0.0", "2.0.0")


def test_malformed_index_entries_are_skipped(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    bad = {"name": ["x"], "version": "1.0.0", "digest": "d", "kind": "k", "summary": "s"}
    backend.put_raw(f"{INDEX_LOG}00000000T000000.000000Z-bad.json", json.dumps(bad).encode())
    backend.put_raw(f"{INDEX_LOG}00000000T000000.000001Z-torn.json", b'{"name": "te')
    assert [r.name for r in registry.list()] == ["test/net"]


def test_index_compacts_into_a_snapshot(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modreg.registry._index as index

    monkeypatch.setattr(index, "COMPACT_AFTER", 2)
    monkeypatch.setattr(index, "CLOCK_SKEW", -3600.0)  # every key counts as old enough
    registry = backend.registry()
    for version in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]:
        registry.publish(_src(tmp_path, version, version=version))
    assert registry.list()[0].versions == ("1.0.0", "1.1.0", "1.2.0", "1.3.0")
    assert any(k.startswith(INDEX_SNAPSHOT) for k in backend.stored_keys())
    registry.publish(_src(tmp_path, "1.4.0", version="1.4.0"))
    assert registry.list()[0].latest == "1.4.0"


# -- tampering -------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["bitflip", "truncate", "delete"])
def test_tampered_object_caught_by_pull_and_verify(
    backend: Backend, tmp_path: Path, damage: str
) -> None:
    registry = backend.registry()
    record = registry.resolve(registry.publish(_src(tmp_path, "a")).ref)
    key = object_key(_weights(record))
    data = bytearray(registry.store.get(key) or b"")
    if damage == "delete":
        backend.delete_raw(key)
    else:
        if damage == "bitflip":
            data[len(data) // 2] ^= 0x01
        else:
            del data[-10:]
        backend.put_raw(key, bytes(data))
    with pytest.raises(IntegrityError):
        registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
    report = registry.verify()
    assert not report.ok and any(_weights(record) in p.key for p in report.problems)


def test_tampered_record_caught(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    key = record_key("test/net", "1.0.0")
    text = (registry.store.get(key) or b"").decode()
    backend.put_raw(key, text.replace('"size": ', '"size": 1').encode())
    with pytest.raises(IntegrityError, match="does not match its digest"):
        registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert not registry.verify().ok


def test_oversized_record_refused_unread(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    backend.put_raw(record_key("test/net", "2.0.0"), b" " * (2 << 20))
    with pytest.raises(IntegrityError, match="over the limit"):
        registry.resolve("test/net@2.0.0")


def test_republish_repairs_a_damaged_object(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    record = registry.resolve(registry.publish(_src(tmp_path, "a")).ref)
    backend.put_raw(object_key(_weights(record)), b"garbage")
    registry.publish(_src(tmp_path, "b"))
    assert registry.verify().ok


def test_forged_record_found_by_verify(backend: Backend, tmp_path: Path) -> None:
    """A record whose digest holds but whose name and kind are not its manifest's."""
    registry = backend.registry()
    record = registry.resolve(registry.publish(_src(tmp_path, "a")).ref)
    forged = VersionRecord(
        "evil/net", "1.0.0", record.digest, "equation", "x", record.files, record.published
    )
    backend.put_raw(record_key("evil/net", "1.0.0"), forged.to_json())
    problems = registry.verify().problems
    assert [p.key for p in problems] == ["record evil/net@1.0.0"]
    assert "its manifest says" in problems[0].problem


def test_stray_keys_reported_not_fatal(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    for key in ["records/test+net/old.json", "records/stray", "objects/sha256/zz", "junk.txt"]:
        backend.put_raw(key, b"x")
    assert registry.pull("test/net", to=tmp_path / "out").version == "1.0.0"
    report = registry.verify()
    assert sorted(p.key for p in report.problems) == sorted(
        ["records/test+net/old.json", "records/stray", "objects/sha256/zz", "junk.txt"]
    )
    assert registry.gc(min_age=0)[1] == 0
    assert registry.versions("test/net") == {"1.0.0": False}


# -- gc --------------------------------------------------------------------------------------
def test_gc_removes_orphans_only(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    backend.put_raw(object_key("ab" + "c" * 62), b"orphan")
    assert registry.gc(min_age=0)[1] == 1
    assert registry.verify().ok
    registry.pull("test/net@1.0.0", to=tmp_path / "out")


def test_gc_spares_objects_of_a_publish_in_flight(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old orphan re-used by a new publish survives a gc run between object and record."""
    registry = backend.registry()
    killed = _src(tmp_path, "killed")
    registry.claim()
    for name in ("modreg.yaml", "weights.safetensors"):  # what a killed publish left behind
        from modreg._content import hash_file

        entry = hash_file(killed / name)
        registry.store.put_if_absent(object_key(entry.sha256), killed / name)
    put_object = _protocol.put_object
    collected: list[tuple[int, int]] = []

    def put_then_gc(store: Any, source: Path, entry: Any) -> bool:
        written = put_object(store, source, entry)
        if source.name == "weights.safetensors":
            collected.append(backend.registry().gc(min_age=0))
        return written

    monkeypatch.setattr(_protocol, "put_object", put_then_gc)
    registry.publish(_src(tmp_path, "again"))
    assert collected == [(0, 0)]
    registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert registry.verify().ok


def test_publish_waits_for_a_running_gc(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = backend.registry()
    registry.claim()
    registry.store.put_if_absent(GC_LOCK, b"{}")
    waited: list[float] = []

    def sleep(seconds: float) -> None:  # the gc finishes while the publish waits
        waited.append(seconds)
        registry.store.delete(GC_LOCK)

    monkeypatch.setattr(_protocol.time, "sleep", sleep)
    assert registry.publish(_src(tmp_path, "a")).created
    assert len(waited) == 1
    registry.store.put_if_absent(GC_LOCK, b"{}")
    with pytest.raises(StoreError, match="another gc is running"):
        registry.gc(min_age=0)


# -- the registry marker ---------------------------------------------------------------------
def test_foreign_location_is_refused_untouched(backend: Backend, tmp_path: Path) -> None:
    backend.put_raw("notes.txt", b"my notes")
    backend.put_raw("tmp/cache.bin", b"data")
    backend.put_raw("index.jsonl", b"not an index")
    before = {k: backend.registry().store.get(k) for k in backend.stored_keys()}
    registry = backend.registry()
    for action in (registry.gc, registry.verify, lambda: registry.publish(_src(tmp_path, "a"))):
        with pytest.raises(NotARegistry, match="is not a modreg registry"):
            action()
    assert {k: registry.store.get(k) for k in backend.stored_keys()} == before


def test_verify_of_nothing_creates_nothing(backend: Backend) -> None:
    with pytest.raises(NotARegistry, match="no registry at"):
        backend.registry().verify()
    assert backend.stored_keys() == []


def test_storage_without_exclusive_create_is_refused() -> None:
    class Careless(MemoryStore):
        def put_if_absent(
            self, key: str, source: bytes | Path, *, sha256: str | None = None
        ) -> bool:
            self.overwrite(key, source if isinstance(source, bytes) else source.read_bytes())
            return True

    with pytest.raises(StoreError, match="does not enforce conditional writes"):
        Registry(Careless("careless")).claim()


def test_publish_checks_the_registry_not_a_cache(backend: Backend, tmp_path: Path) -> None:
    """A registry wiped and made again at the same location: publish asks the store itself."""
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    registry.pull("test/net@1.0.0", to=tmp_path / "out")  # fills a remote registry's cache
    for key in backend.stored_keys():
        backend.delete_raw(key)
    assert backend.registry().publish(_src(tmp_path, "b", seed=1)).created
