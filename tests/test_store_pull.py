"""Pulled bytes are checked span by span as the kernel copies them; old records still pull."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from modreg._content import FileEntry, hash_file, tree_digest
from modreg.errors import IntegrityError
from modreg.registry import Registry
from modreg.registry._deliver import deliver
from modreg.registry._keys import object_key
from modreg.store import LocalStore
from modreg.store import local as local_store

from ._helpers import write_network_module

SPAN = 4096


@pytest.fixture
def small_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spans of 4 KiB, so a 40 KiB object is copied and hashed in ten steps."""
    monkeypatch.setattr(local_store, "SPAN", SPAN)


def _stored(tmp_path: Path, size: int = 10 * SPAN + 123) -> tuple[LocalStore, FileEntry, Path]:
    source = tmp_path / "blob.bin"
    source.write_bytes(os.urandom(size))
    entry = hash_file(source)
    store = LocalStore(tmp_path / "registry")
    store.put_if_absent(object_key(entry.sha256), source, sha256=entry.sha256)
    return store, entry, store.root / object_key(entry.sha256)


@pytest.mark.usefixtures("small_spans")
def test_multi_span_pull_delivers_identical_bytes(tmp_path: Path) -> None:
    store, entry, stored = _stored(tmp_path)
    deliver(store, entry, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == stored.read_bytes()


@pytest.mark.usefixtures("small_spans")
@pytest.mark.parametrize("offset", [0, 5 * SPAN + 7, 10 * SPAN + 122])
def test_damage_in_any_span_is_caught(tmp_path: Path, offset: int) -> None:
    store, entry, stored = _stored(tmp_path)
    data = bytearray(stored.read_bytes())
    data[offset] ^= 0x80
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match its record"):
        deliver(store, entry, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_wrong_size_is_caught_before_copying(tmp_path: Path) -> None:
    store, entry, stored = _stored(tmp_path)
    stored.write_bytes(stored.read_bytes()[:-1])
    with pytest.raises(IntegrityError, match="its record says"):
        deliver(store, entry, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_empty_file(tmp_path: Path) -> None:
    store, entry, _ = _stored(tmp_path, size=0)
    deliver(store, entry, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == b""


@pytest.mark.usefixtures("small_spans")
def test_copy_without_kernel_support(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where copy_file_range is missing (not Linux) or refused (across devices), bytes go
    through user space, checked the same way."""
    store, entry, stored = _stored(tmp_path)
    monkeypatch.setattr(local_store, "_KERNEL_COPY", False)
    deliver(store, entry, tmp_path / "plain.bin")

    def cross_device(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(local_store, "_KERNEL_COPY", True)
    monkeypatch.setattr(os, "copy_file_range", cross_device, raising=False)
    deliver(store, entry, tmp_path / "exdev.bin")
    for name in ("plain.bin", "exdev.bin"):
        assert (tmp_path / name).read_bytes() == stored.read_bytes()


def _rewrite_record(registry_path: Path, edit: object) -> None:
    """Edit the stored record of test/net@1.0.0 and give it a digest that matches."""
    path = registry_path / "records" / "test+net" / "1.0.0.json"
    record = json.loads(path.read_text())
    edit(record)  # type: ignore[operator]
    entries = [FileEntry(**f) for f in record["files"]]
    record["digest"] = tree_digest(entries)
    path.write_text(json.dumps(record))


def _to_schema_1(record: dict[str, object]) -> None:
    record["schema_version"] = 1
    for entry in record["files"]:  # type: ignore[attr-defined]
        del entry["blake3"]


def test_records_without_blake3_still_pull(tmp_path: Path, registry_path: Path) -> None:
    registry = Registry(registry_path)
    registry.publish(write_network_module(tmp_path / "src"))
    _rewrite_record(registry_path, _to_schema_1)
    module = registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert all(entry.blake3 is None for entry in module.files)
    assert (tmp_path / "out" / "weights.safetensors").read_bytes() == (
        tmp_path / "src" / "weights.safetensors"
    ).read_bytes()
    sha = next(e.sha256 for e in module.files if e.path == "weights.safetensors")
    (registry_path / "objects" / "sha256" / sha[:2] / sha[2:]).write_bytes(b"junk")
    with pytest.raises(IntegrityError):  # the sha256 is checked instead
        registry.pull("test/net@1.0.0", to=tmp_path / "again")


@pytest.mark.parametrize("name", ["../escape.txt", "sub/dir.txt", "..", ""])
def test_record_file_names_cannot_leave_the_module(
    tmp_path: Path, registry_path: Path, name: str
) -> None:
    registry = Registry(registry_path)
    registry.publish(write_network_module(tmp_path / "src"))

    def rename(record: dict[str, list[dict[str, object]]]) -> None:
        record["files"][0]["path"] = name

    _rewrite_record(registry_path, rename)
    with pytest.raises(IntegrityError, match="is damaged"):
        registry.pull("test/net@1.0.0", to=tmp_path / "deep" / "out")
    assert not (tmp_path / "deep" / "escape.txt").exists()


def test_verify_checks_the_record_claims_about_each_object(
    tmp_path: Path, registry_path: Path
) -> None:
    """A record whose digest holds but whose BLAKE3 does not describe the stored object
    (written by a faulty publisher) is refused by pull and reported by verify."""
    registry = Registry(registry_path)
    registry.publish(write_network_module(tmp_path / "src"))

    def wrong_blake3(record: dict[str, list[dict[str, object]]]) -> None:
        for entry in record["files"]:
            if entry["path"] == "weights.safetensors":
                entry["blake3"] = "0" * 64

    _rewrite_record(registry_path, wrong_blake3)
    with pytest.raises(IntegrityError, match="does not match its record"):
        registry.pull("test/net@1.0.0", to=tmp_path / "out")
    report = registry.verify()
    assert [p.key for p in report.problems] == ["record test/net@1.0.0"]
    assert "weights.safetensors" in report.problems[0].problem


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: r.update(extra="field"),
        lambda r: r.update(schema_version=3),
        lambda r: r.update(schema_version=True),
        lambda r: r["files"][0].update(size=-1),
        lambda r: r["files"][0].update(size="12"),
        lambda r: r["files"][0].update(sha256="ab" * 31),
        lambda r: r["files"][0].pop("blake3"),
    ],
    ids=["extra", "schema-3", "schema-bool", "negative-size", "text-size", "short-hash", "no-b3"],
)
def test_malformed_records_are_refused(tmp_path: Path, registry_path: Path, damage: object) -> None:
    registry = Registry(registry_path)
    registry.publish(write_network_module(tmp_path / "src"))
    _rewrite_record(registry_path, damage)
    with pytest.raises(IntegrityError, match="is damaged"):
        registry.pull("test/net@1.0.0", to=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not registry.verify().ok
