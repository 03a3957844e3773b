"""Stray keys a registry can meet, held against every backend: readers skip them, ``verify``
reports them, ``gc`` never deletes real data on their strength, and a folder that only looks
like a registry is never touched.

A stray is a key under a registry prefix whose name is not of the shape modreg writes, whose
value is unreadable or over its limit, whose body does not parse, or that names a version
nobody published (``modreg/store/_keys.py``, ``modreg/_index.py``, ``modreg/_maintenance.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import modreg.registry._index as index
import modreg.registry._maintenance as maintenance
from modreg.deps.lineage import users_of
from modreg.errors import NotARegistry, StoreError
from modreg.registry import Registry
from modreg.registry._keys import INDEX_LOG, MARKER, SNAPSHOT_MAX, object_key, snapshot_key
from modreg.registry._records import RECORD_LIMIT

from ._backends import BACKENDS, Backend, make_backend
from ._helpers import run_cli, write_network_module

PHANTOM = {"name": "ph/x", "version": "9.9.9", "digest": "d", "kind": "network", "summary": "p"}
LATE_LOG = f"{INDEX_LOG}20991231T000000.000000Z-aaaaaaaaaaaa.json"  # after every real key
EARLY_LOG = f"{INDEX_LOG}20000101T000000.000000Z-aaaaaaaaaaaa.json"  # before ``through``
FUTURE = f"{INDEX_LOG}99991231T235959.999999Z-ffffffffffff.json"
MIDDLE = snapshot_key(500)  # well-formed, far above the real snapshots
TEMP = f"999999999-{'d' * 32}"  # a modreg temp name of a process that is gone


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    server = request.getfixturevalue("s3_env") if request.param == "s3" else None
    return make_backend(request.param, tmp_path, server)


@pytest.fixture
def folded(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """a/net and b/net, their index folded into a snapshot and the folded log collected.

    Every log key counts as old and every snapshot as past its grace, so verify folds the
    whole log and gc deletes what it folded: the state a stray could make gc destroy.
    """
    monkeypatch.setattr(index, "CLOCK_SKEW", -3600.0)
    monkeypatch.setattr(index, "SNAPSHOT_LIMIT", 1 << 16)
    monkeypatch.setattr(maintenance, "FOLD_GRACE", -1.0)
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a", name="a/net"))
    registry.publish(_src(tmp_path, "b", name="b/net"))
    assert registry.verify().ok
    registry.gc(min_age=0)
    assert len(index.log_keys(registry.store)) == 1  # a/net's folded away, ``through`` kept
    return registry


def _src(tmp_path: Path, tag: str, **kw: object) -> Path:
    return write_network_module(tmp_path / f"src-{tag}", **kw)  # type: ignore[arg-type]


def _names(registry: Registry) -> list[str]:
    return [row.name for row in registry.list()]


def _problems(registry: Registry) -> set[str]:
    return {p.key for p in registry.verify().problems}


def _json(data: object, pad: int = 0) -> bytes:
    return json.dumps(data).encode() + b" " * pad


# -- index snapshots -------------------------------------------------------------------------
STRAY_SNAPSHOTS = {
    "huge-sequence": (
        "index/snapshot/999999999999999.json",
        _json({"through": FUTURE, "entries": [PHANTOM]}),
    ),
    "not-a-number": ("index/snapshot/zzz.json", _json({"through": "", "entries": [PHANTOM]})),
    "garbage-body": (MIDDLE, b"\x00{garbage"),
    "entries-not-a-list": (MIDDLE, _json({"through": "", "entries": {"a": 1}})),
    "through-not-a-log-key": (MIDDLE, _json({"through": "zzz", "entries": [PHANTOM]})),
    "through-past-every-log-key": (MIDDLE, _json({"through": FUTURE, "entries": [PHANTOM]})),
    "oversized": (MIDDLE, _json({"through": "", "entries": [PHANTOM]}, pad=70_000)),
}


@pytest.mark.parametrize("case", STRAY_SNAPSHOTS.values(), ids=STRAY_SNAPSHOTS.keys())
def test_a_stray_snapshot_never_shadows_the_index(
    folded: Registry, backend: Backend, case: tuple[str, bytes]
) -> None:
    key, body = case
    backend.put_raw(key, body)
    assert _names(folded) == ["a/net", "b/net"]
    folded.gc(min_age=0)  # before verify: the stray must not pass for the newest snapshot
    assert _names(folded) == ["a/net", "b/net"]
    assert _problems(folded) == {key}
    current = index.current_snapshot(folded.store)
    assert current is not None and current.key == index.snapshot_keys(folded.store)[-1][1]
    assert sorted(e.name for e in current.entries) == ["a/net", "b/net"]  # verify's rebuild
    folded.gc(min_age=0)
    assert _names(folded) == ["a/net", "b/net"]
    assert key in backend.stored_keys()  # a stray is reported, never deleted by gc
    backend.delete_raw(key)
    assert folded.verify().ok
    assert _names(folded) == ["a/net", "b/net"]


def test_a_snapshot_at_the_last_sequence_is_reported(folded: Registry, backend: Backend) -> None:
    key = snapshot_key(SNAPSHOT_MAX)
    backend.put_raw(key, b"garbage")
    assert _names(folded) == ["a/net", "b/net"]
    problems = [p.problem for p in folded.verify().problems if p.key == key]
    assert any("last snapshot number" in p for p in problems)
    folded.gc(min_age=0)
    assert _names(folded) == ["a/net", "b/net"]
    backend.delete_raw(key)
    assert folded.verify().ok


# -- index log -------------------------------------------------------------------------------
STRAY_LOG_KEYS = {
    "oversized": (LATE_LOG, _json(PHANTOM, pad=70_000)),
    "oversized-before-through": (EARLY_LOG, _json(PHANTOM, pad=70_000)),
    "garbage": (LATE_LOG, b"\xff\x00 not json"),
    "not-an-entry": (LATE_LOG, _json({"name": "x"})),
    "malformed-name": ("index/log/zzz.json", _json(PHANTOM)),
    "no-month-13": (f"{INDEX_LOG}20991399T000000.000000Z-aaaaaaaaaaaa.json", _json(PHANTOM)),
    "no-id": (f"{INDEX_LOG}20991231T000000.000000Z.json", _json(PHANTOM)),
}


@pytest.mark.parametrize("case", STRAY_LOG_KEYS.values(), ids=STRAY_LOG_KEYS.keys())
def test_a_stray_log_key_is_skipped_and_reported(
    folded: Registry, backend: Backend, case: tuple[str, bytes]
) -> None:
    key, body = case
    backend.put_raw(key, body)
    assert _names(folded) == ["a/net", "b/net"]  # never fatal, for anyone
    assert _problems(folded) == {key}
    folded.gc(min_age=0)
    assert key in backend.stored_keys()
    assert _names(folded) == ["a/net", "b/net"]


def test_a_log_entry_of_an_unpublished_version_is_reported(
    folded: Registry, backend: Backend
) -> None:
    backend.put_raw(LATE_LOG, _json(PHANTOM))
    problems = [p for p in folded.verify().problems if p.key == LATE_LOG]
    assert len(problems) == 1 and "ph/x@9.9.9, which is not published" in problems[0].problem


# -- reverse dependencies, signatures, markers, locks ------------------------------------------
STRAY_DEPS = [
    "deps/test+net/@1.0.0",
    "deps/test+net/..@1.0.0",
    "deps/test+net/Bad Name@1.0.0",
    "deps/test+net/a+b+c@1.0.0",
    "deps/test+net/x+y@not-a-version",
    "deps/test+net/x+y@1.0.0@2",
    "deps/test+net/ghost+net@1.0.0",  # well-formed, but nobody published ghost/net
    "deps/x",
]
REMOTE_ONLY_DEPS = ["deps/test+net/"]  # no file can have this name


def test_stray_dependency_keys_are_skipped_and_reported(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    registry.publish(_src(tmp_path, "b", name="other/net"))
    backend.put_raw("deps/test+net/other+net@1.0.0", b"")
    strays = STRAY_DEPS + (REMOTE_ONLY_DEPS if backend.name != "local" else [])
    for key in strays:
        backend.put_raw(key, b"")
    assert registry.dependents("test/net") == [("other/net", "1.0.0")]
    assert users_of(registry, "test/net", "1.0.0") == []  # other/net requires nothing
    for command in (["check", "dependents"], ["lineage"]):
        code, _, err = run_cli([*command, "test/net@1.0.0", "--registry", backend.location], capsys)
        assert code == 0, err
    assert _problems(registry) == set(strays) | {"deps/test+net/other+net@1.0.0"}
    registry.gc(min_age=0)
    assert set(strays) <= set(backend.stored_keys())


STRAY_BOOKKEEPING = [
    "signatures/test+net/1.0.0/not-hex.json",
    "signatures/test+net/1.0.0/abcd",
    "signatures/test+net/1.0.0.x/abcd.json",
    "signatures/ghost+net/1.0.0/abcd.json",
    "signatures/x",
    "inflight/zzz.json",
    f"inflight/{'a' * 32}",
    "locks/other.json",
    "locks/gc.json.old",
    "index/other/x.json",
    "index.jsonl.old",
]


def test_stray_bookkeeping_keys_are_reported_and_left(backend: Backend, tmp_path: Path) -> None:
    registry = backend.registry()
    registry.publish(_src(tmp_path, "a"))
    for key in STRAY_BOOKKEEPING:
        backend.put_raw(key, b"{}")
    oversized = f"inflight/{'b' * 32}.json"
    backend.put_raw(oversized, b" " * (RECORD_LIMIT + 1))
    assert _names(registry) == ["test/net"]
    assert _problems(registry) == {*STRAY_BOOKKEEPING, oversized}
    backend.put_raw(object_key("ab" + "c" * 62), b"orphan")
    assert registry.gc(min_age=0) == (0, 1)  # strays neither honoured nor removed
    assert {*STRAY_BOOKKEEPING, oversized} <= set(backend.stored_keys())
    assert registry.pull("test/net@1.0.0", to=tmp_path / "out").version == "1.0.0"


# -- things that are not files (a local directory only) --------------------------------------
NOT_FILES = [
    LATE_LOG,
    EARLY_LOG,
    MIDDLE,
    f"inflight/{'a' * 32}.json",
    "signatures/test+net/1.0.0/abcd.json",
    "locks/gc.json",
    "index.jsonl",
]


@pytest.mark.parametrize("kind", ["fifo", "folder", "symlink"])
@pytest.mark.parametrize("key", NOT_FILES)
def test_a_bookkeeping_key_that_is_not_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, kind: str
) -> None:
    monkeypatch.setattr(index, "CLOCK_SKEW", -3600.0)
    monkeypatch.setattr(maintenance, "FOLD_GRACE", -1.0)
    root = tmp_path / "registry"
    registry = Registry(root)
    registry.publish(_src(tmp_path, "a"))
    assert registry.verify().ok
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
        (path / "inner").write_bytes(b"{}")
    else:
        path.symlink_to("/dev/zero")
    assert _names(registry) == ["test/net"]
    problems = _problems(registry)
    assert problems and all(p.startswith(key) for p in problems)
    if key == "locks/gc.json":
        with pytest.raises(StoreError, match="not a regular file, so gc cannot take its lock"):
            registry.gc(min_age=0)
    else:
        registry.gc(min_age=0)
    assert os.path.lexists(path)
    assert _names(registry) == ["test/net"]


def test_an_unreadable_record_stops_gc_from_deleting_objects(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    registry.publish(_src(tmp_path, "a"))
    (root / object_key("ab" + "c" * 62)).parent.mkdir(parents=True)
    (root / object_key("ab" + "c" * 62)).write_bytes(b"orphan")
    os.mkfifo(root / "records" / "test+net" / "2.0.0.json")
    assert registry.gc(min_age=0) == (0, 0)  # what the unreadable record names is unknown
    assert "record test/net@2.0.0" in _problems(registry)
    (root / "records" / "test+net" / "2.0.0.json").unlink()
    assert registry.gc(min_age=0) == (0, 1)


# -- locations that only look like registries ------------------------------------------------
LOOKALIKES = {
    "tmp-and-index": {"index.jsonl": b"my own data\n"},
    "a-record-that-does-not-parse": {
        "index.jsonl": b"{}\n",
        "records/my+notes/1.0.0.json": b'{"mine": true}',
    },
    "objects-only": {object_key("ab" + "c" * 62): b"x", "index/log/x.json": b"{}"},
}


@pytest.mark.parametrize("files", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_a_folder_that_only_looks_like_an_old_registry_is_untouched(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    home = tmp_path / "home"
    (home / "tmp" / f"{TEMP}.stage").mkdir(parents=True)
    (home / "tmp" / "draft.txt").write_text("keep me")
    (home / "tmp" / f"{TEMP}.tmp").write_text("looks like modreg's, still not ours to delete")
    for key, data in files.items():
        (home / key).parent.mkdir(parents=True, exist_ok=True)
        (home / key).write_bytes(data)
    before = sorted((str(p), p.read_bytes() if p.is_file() else b"") for p in home.rglob("*"))
    registry = Registry(home)
    for action in (registry.gc, registry.verify):
        with pytest.raises(NotARegistry, match="is not a modreg registry"):
            action()
    with pytest.raises(NotARegistry, match="is not a modreg registry"):
        registry.publish(_src(tmp_path, "a"))
    after = sorted((str(p), p.read_bytes() if p.is_file() else b"") for p in home.rglob("*"))
    assert after == before


def test_a_lookalike_location_is_refused_on_every_backend(backend: Backend, tmp_path: Path) -> None:
    backend.put_raw("index.jsonl", b"my own data\n")
    backend.put_raw("records/my+notes/1.0.0.json", b'{"mine": true}')
    before = backend.stored_keys()
    registry = backend.registry()
    for action in (registry.gc, registry.verify, lambda: registry.publish(_src(tmp_path, "a"))):
        with pytest.raises(NotARegistry, match="no version record that parses"):
            action()
    assert backend.stored_keys() == before


def test_an_old_registry_loses_only_modreg_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    registry.publish(_src(tmp_path, "a"))
    (root / MARKER).unlink()  # the layout of a registry made before the marker
    (root / "tmp" / f"{TEMP}.tmp").write_bytes(b"partial")
    (root / "tmp" / f"{TEMP}.stage").mkdir()
    (root / "tmp" / "notes.txt").write_text("keep me")
    (root / "tmp" / f"{TEMP}.txt").write_text("keep me too")
    report = registry.verify()
    assert (root / MARKER).exists() and report.temporaries_removed == 2
    assert sorted(p.problem for p in report.problems) == [
        f"tmp/{TEMP}.txt is not a temp file of modreg: remove it by hand",
        "tmp/notes.txt is not a temp file of modreg: remove it by hand",
    ]
    registry.gc(min_age=0)
    assert sorted(p.name for p in (root / "tmp").iterdir()) == [f"{TEMP}.txt", "notes.txt"]
