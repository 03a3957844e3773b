"""Attacks and accidents only a local directory can meet: FIFOs, symlinks, stray folders,
short writes, a pull into the registry, racing pulls over a damaged cache, a registry made by
an older modreg, and a manifest edited while it is published."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

import modreg.store.local as local
from modreg.errors import IntegrityError, InvalidModule, NotARegistry
from modreg.module import Module
from modreg.registry import Registry
from modreg.registry._keys import object_key

from ._helpers import write_network_module


def _published(tmp_path: Path) -> tuple[Registry, Path, str]:
    root = tmp_path / "registry"
    registry = Registry(root)
    record = registry.resolve(registry.publish(write_network_module(tmp_path / "src")).ref)
    weights = next(e.sha256 for e in record.files if e.path == "weights.safetensors")
    return registry, root, weights


def test_home_directory_by_mistake_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / "tmp" / "draft.txt").write_text("keep me")
    (home / "index.jsonl").write_text("my own data\n")
    (home / ".bashrc").write_text("alias x=y\n")
    registry = Registry(home)
    for action in (registry.gc, registry.verify):
        with pytest.raises(NotARegistry, match="is not a modreg registry"):
            action()
    assert (home / "tmp" / "draft.txt").read_text() == "keep me"
    assert (home / "index.jsonl").read_text() == "my own data\n"
    missing = tmp_path / "nothing-here"
    with pytest.raises(NotARegistry, match="no registry at"):
        Registry(missing).verify()
    assert not missing.exists()


def test_registry_made_before_the_marker_is_recognised(tmp_path: Path) -> None:
    registry, root, _ = _published(tmp_path)
    (root / "modreg-registry.json").unlink()
    shutil.rmtree(root / "index")
    entry = {"name": "test/net", "version": "1.0.0", "digest": "d", "kind": "network"}
    (root / "index.jsonl").write_text(json.dumps({**entry, "summary": "old"}) + "\n")
    assert [r.summary for r in registry.list()] == ["old"]  # the old index is still read
    assert registry.verify().ok
    assert (root / "modreg-registry.json").exists()
    assert [r.summary for r in registry.list()] == ["a test network"]


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-dev-zero", "directory"])
def test_non_files_among_objects_never_hang(tmp_path: Path, kind: str) -> None:
    registry, root, weights = _published(tmp_path)
    path = root / object_key(weights)
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink-to-dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
        (path / "inner").write_bytes(b"x")
    with pytest.raises(IntegrityError):
        registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = registry.verify()
    assert not report.ok and any(weights in p.key for p in report.problems)
    registry.gc(min_age=0)  # reports nothing, crashes on nothing


def test_stray_entries_in_tmp_records_and_objects(tmp_path: Path) -> None:
    registry, root, _ = _published(tmp_path)
    (root / "tmp" / "a-folder").mkdir(parents=True)
    (root / "tmp" / "a-folder" / "x").write_text("x")
    os.mkfifo(root / "tmp" / "a-fifo")
    (root / "records" / "loose-file").write_text("x")
    (root / "objects" / "sha256" / "loose").write_text("x")
    (root / "records" / "test+net" / "old.json").write_text("{}")
    report = registry.verify()
    keys = sorted(p.key for p in report.problems)
    assert keys == [
        "objects/sha256/loose",
        "records/loose-file",
        "records/test+net/old.json",
        "tmp",
        "tmp",
    ]
    assert registry.pull("test/net", to=tmp_path / "out").version == "1.0.0"
    registry.gc(min_age=0)
    assert (root / "tmp" / "a-folder" / "x").read_text() == "x"  # not modreg's: reported, kept


def test_short_writes_never_tear_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk may accept only part of a write(); the rest must still be written."""
    write = os.write

    def dribble(fd: int, data: bytes | memoryview) -> int:
        return write(fd, bytes(data[:7]))

    monkeypatch.setattr(local.os, "write", dribble)
    registry, _, _ = _published(tmp_path)
    registry.publish(write_network_module(tmp_path / "v2", version="2.0.0"))
    assert registry.list()[0].versions == ("1.0.0", "2.0.0")
    monkeypatch.undo()
    assert registry.verify().ok


def test_pull_into_the_registry_is_refused(tmp_path: Path) -> None:
    registry, root, _ = _published(tmp_path)
    for target in (root / "objects" / "x", root, root / "tmp" / "y"):
        with pytest.raises(InvalidModule, match="inside the registry"):
            registry.pull("test/net@1.0.0", to=target)
    assert registry.verify().ok


def _pull(registry: Registry, results: list[object]) -> None:
    try:
        results.append(Registry(registry.location).pull("test/net@1.0.0"))
    except Exception as exc:
        results.append(exc)


def test_racing_pulls_over_a_damaged_cache(tmp_path: Path) -> None:
    registry, _, _ = _published(tmp_path)
    for _ in range(5):
        cached = registry.pull("test/net@1.0.0")
        (cached.path / "weights.safetensors").write_bytes(b"junk")
        results: list[object] = []
        threads = [threading.Thread(target=_pull, args=(registry, results)) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(isinstance(r, Module) for r in results), results
        assert (cached.path / "weights.safetensors").stat().st_size > 4


def test_gc_removes_partial_pulls_of_dead_processes(tmp_path: Path) -> None:
    registry, _, _ = _published(tmp_path)
    cache = registry.pull("test/net@1.0.0").path.parent
    stale = cache / ".1.0.0.999999999-deadbeef.partial"
    stale.mkdir()
    (stale / "modreg.yaml").write_text("half")
    live = cache / f".1.0.0.{os.getpid()}-cafecafe.partial"
    live.mkdir()
    registry.gc()
    assert not stale.exists() and live.exists()


def test_manifest_edited_mid_publish_is_never_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes that are validated are the bytes that are stored (a staged copy)."""
    registry = Registry(tmp_path / "registry")
    src = write_network_module(tmp_path / "src")
    valid = (src / "modreg.yaml").read_bytes()
    from_dir = Module.from_dir

    def edit_after_validation(directory: str | Path) -> Module:
        module = from_dir(directory)
        (src / "modreg.yaml").write_text("name: test/net\nversion: 1.0.0\nkind: ::broken\n")
        return module

    monkeypatch.setattr(Module, "from_dir", staticmethod(edit_after_validation))
    registry.publish(src)
    monkeypatch.undo()
    pulled = registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert (pulled.path / "modreg.yaml").read_bytes() == valid
    assert pulled.manifest.summary == "a test network"
    assert registry.verify().ok


def test_errors_name_the_users_folder_not_the_staging_copy(tmp_path: Path) -> None:
    src = write_network_module(tmp_path / "src")
    (src / "modreg.yaml").write_text((src / "modreg.yaml").read_text() + "bogus: 1\n")
    with pytest.raises(Exception, match="bogus") as caught:
        Registry(tmp_path / "registry").publish(src)
    assert "/tmp/" not in str(caught.value).replace(str(tmp_path), "")
