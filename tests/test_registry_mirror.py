"""Mirrors, retries and the remote cache: what a team's second registry and a flaky disk need.

A mirror made by ``copy`` serves the same pulls as its source, trust policy included; a
publish that failed after its commit point is finished by its retry; and the local cache
in front of a remote registry heals what happens to it on a user's disk.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import modreg
from modreg.errors import StoreError
from modreg.registry import Registry, _index
from modreg.registry._keys import object_key, record_key, yank_key
from tests._helpers import run_cli, write_keypair, write_network_module

_backends = pytest.importorskip("tests._backends")
REMOTE = ["memory", "s3"]


@pytest.fixture(params=_backends.BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    server = request.getfixturevalue("s3_env") if request.param == "s3" else None
    return _backends.make_backend(request.param, tmp_path, server)


@pytest.fixture(params=REMOTE)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    server = request.getfixturevalue("s3_env") if request.param == "s3" else None
    return _backends.make_backend(request.param, tmp_path, server)


def _sign(registry: Registry, ref: str, key: Path) -> None:
    from modreg.signing import sign

    sign(registry, ref, key)


# -- copy: a mirror keeps signatures and yanks, and survives re-runs -------------------------
def test_a_mirror_keeps_signatures_and_yanks_with_their_reasons(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = write_keypair(tmp_path)
    source = Registry(tmp_path / "source")
    for version in ("1.0.0", "1.1.0"):
        source.publish(write_network_module(tmp_path / version, version=version))
        _sign(source, f"test/net@{version}", private)
    source.yank("test/net@1.1.0", reason="diverges above 0.8 m")
    mirror = backend.registry()
    for ref in source.refs():
        source.copy(ref, mirror)
    assert mirror.signatures("test/net@1.0.0") == source.signatures("test/net@1.0.0")
    reason = json.loads(mirror.store.get(yank_key("test/net", "1.1.0")) or b"{}")["reason"]
    assert reason == "diverges above 0.8 m"
    assert mirror.list()[0].yanked == ("1.1.0",)
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    pulled = backend.registry().pull("test/net@>=1", to=tmp_path / "pulled")
    assert pulled.version == "1.0.0"  # the yank holds in the mirror too


def test_copy_all_rerun_after_a_yank_in_the_source_finishes(
    backend: Any, tmp_path: Path, capsys: Any
) -> None:
    source = tmp_path / "source"
    for version in ("1.0.0", "2.0.0"):
        Registry(source).publish(write_network_module(tmp_path / version, version=version))
    args = ["copy", "--all", "--registry", str(source), "--to", backend.location]
    assert run_cli(args, capsys)[0] == 0
    Registry(source).yank("test/net@1.0.0", reason="bad")
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert run_cli(args, capsys)[0] == 0  # and again: nothing left to do is not an error
    assert backend.registry().versions("test/net") == {"1.0.0": True, "2.0.0": False}


def test_a_copy_already_there_is_completed(backend: Any, tmp_path: Path) -> None:
    """A copy interrupted after the record: the re-run writes its index entry."""
    source = Registry(tmp_path / "source")
    source.publish(write_network_module(tmp_path / "src"))
    mirror = backend.registry()
    mirror.claim()
    record = source.resolve("test/net@1.0.0")
    for entry in record.files:
        source.deliver(entry, tmp_path / entry.sha256)
        mirror.store.put_if_absent(object_key(entry.sha256), tmp_path / entry.sha256)
    data = source.store.get(record_key("test/net", "1.0.0")) or b""
    mirror.store.put_if_absent(record_key("test/net", "1.0.0"), data)
    assert mirror.list() == []
    assert not source.copy("test/net@1.0.0", mirror).created
    assert [row.name for row in mirror.list()] == ["test/net"]


# -- publish: a retry finishes what a failed publish left ------------------------------------
def test_a_publish_that_failed_after_its_commit_is_finished_by_the_retry(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = backend.registry()
    folder = write_network_module(tmp_path / "src")
    real = _index.append_entry

    def full_disk(store: Any, entry: Any) -> None:
        raise StoreError("No space left on device")

    monkeypatch.setattr(_index, "append_entry", full_disk)
    with pytest.raises(StoreError, match="No space"):
        registry.publish(folder)
    monkeypatch.setattr(_index, "append_entry", real)
    assert registry.resolve("test/net@1.0.0").version == "1.0.0"  # committed
    assert registry.list() == []  # but not listed
    assert not registry.publish(folder).created
    assert [row.latest for row in registry.list()] == ["1.0.0"]
    registry.publish(folder)  # a further retry writes no second entry
    assert len(list(registry.store.list("index/log/"))) == 1


# -- the remote cache heals ------------------------------------------------------------------
def test_offline_pull_under_a_trust_policy_uses_cached_signatures(
    remote: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = write_keypair(tmp_path)
    registry = remote.registry()
    registry.publish(write_network_module(tmp_path / "src"))
    _sign(registry, "test/net@1.0.0", private)
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    remote.registry().pull("test/net@1.0.0", to=tmp_path / "online")
    offline = remote.registry(offline=True)

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the network is down")

    for method in ("get", "head", "list", "read_into", "iter_bytes"):
        monkeypatch.setattr(offline.store, method, unreachable)
    pulled = modreg.pull("test/net@1.0.0", to=tmp_path / "offline", registry=offline)
    assert pulled.version == "1.0.0"


def test_a_pulled_file_saved_in_place_leaves_the_cache_intact(remote: Any, tmp_path: Path) -> None:
    record = remote.registry().resolve(
        remote.registry().publish(write_network_module(tmp_path / "src")).ref
    )
    first = remote.registry().pull(record.ref, to=tmp_path / "a")
    with open(first.file("weights.safetensors"), "r+b") as handle:  # saved in place
        handle.write(b"\0" * 16)
    again = remote.registry(offline=True).pull(record.ref, to=tmp_path / "b")
    assert again.digest == record.digest


@pytest.mark.parametrize(
    "damage", ["truncated record", "object link", "object folder", "truncated bundle"]
)
def test_a_damaged_cache_entry_is_dropped_and_fetched_again(
    remote: Any, tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = remote.registry()
    record = registry.resolve(registry.publish(write_network_module(tmp_path / "src")).ref)
    private, public = write_keypair(tmp_path)
    _sign(registry, record.ref, private)
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    registry = remote.registry()
    registry.pull(record.ref, to=tmp_path / "a")
    cache = registry.settings.store_cache
    if damage == "truncated bundle":
        (cached,) = cache.glob("*/signatures/test+net/1.0.0/*.json")
        cached.write_bytes(cached.read_bytes()[:40])
    elif damage == "truncated record":
        (cached,) = cache.glob("*/records/test+net/1.0.0.json")
        cached.write_bytes(cached.read_bytes()[:40])
    else:
        weights = next(e for e in record.files if e.path == "weights.safetensors")
        cached = cache / object_key(weights.sha256)
        cached.unlink()
        if damage == "object link":
            os.symlink(tmp_path / "src" / "weights.safetensors", cached)
        else:
            cached.mkdir()
    pulled = remote.registry().pull(record.ref, to=tmp_path / "b")
    assert pulled.digest == record.digest
    assert remote.registry(offline=True).pull(record.ref, to=tmp_path / "c").digest == (
        record.digest
    )
    shutil.rmtree(tmp_path / "c")


# -- repair: damaged objects come back from a healthy registry -------------------------------
def test_verify_repair_restores_damaged_and_missing_objects(
    backend: Any, tmp_path: Path, capsys: Any
) -> None:
    healthy = Registry(tmp_path / "healthy")
    for version in ("1.0.0", "1.1.0"):
        healthy.publish(write_network_module(tmp_path / version, version=version, seed=1))
    damaged = backend.registry()
    for ref in healthy.refs():
        healthy.copy(ref, damaged)
    record = damaged.resolve("test/net@1.0.0")
    weights = next(e for e in record.files if e.path == "weights.safetensors")
    manifest = next(e for e in record.files if e.path == "modreg.yaml")
    backend.put_raw(object_key(weights.sha256), b"junk")
    backend.delete_raw(object_key(manifest.sha256))
    assert not damaged.verify().ok
    assert not healthy.copy("test/net@1.0.0", damaged).created  # copy alone cannot fix it
    args = ["verify", "--registry", backend.location]
    code, out, err = run_cli([*args, "--repair", "--from", str(tmp_path / "healthy")], capsys)
    assert code == 0, out + err
    assert err.count("repaired object") == 2 and out.endswith(": ok\n")
    pulled = backend.registry().pull("test/net@1.0.0", to=tmp_path / "pulled")
    assert pulled.digest == record.digest


def test_repair_never_takes_bytes_the_record_does_not_name(backend: Any, tmp_path: Path) -> None:
    other = Registry(tmp_path / "other")  # holds other bytes under the same version
    other.publish(write_network_module(tmp_path / "o", seed=7))
    registry = backend.registry()
    record = registry.resolve(registry.publish(write_network_module(tmp_path / "r")).ref)
    weights = next(e for e in record.files if e.path == "weights.safetensors")
    backend.put_raw(object_key(weights.sha256), b"junk")
    report = registry.repair(other)
    assert report.repaired == [] and len(report.problems) == 1
    assert "weights.safetensors" in report.problems[0].key
    assert not registry.verify().ok


def test_repair_needs_its_source(tmp_path: Path, capsys: Any) -> None:
    Registry(tmp_path / "r").publish(write_network_module(tmp_path / "src"))
    code, _, err = run_cli(["verify", "--registry", str(tmp_path / "r"), "--repair"], capsys)
    assert code == 2 and "--repair and --from REGISTRY go together" in err


def test_a_yank_that_failed_after_its_marker_is_finished_by_the_retry(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = backend.registry()
    registry.publish(write_network_module(tmp_path / "src"))
    real = _index.append_entry

    def full_disk(store: Any, entry: Any) -> None:
        raise StoreError("No space left on device")

    monkeypatch.setattr(_index, "append_entry", full_disk)
    with pytest.raises(StoreError, match="No space"):
        registry.yank("test/net@1.0.0", reason="wrong sign")
    monkeypatch.setattr(_index, "append_entry", real)
    assert registry.versions("test/net") == {"1.0.0": True}  # the marker holds
    assert registry.list()[0].yanked == ()  # but the index missed it
    registry.yank("test/net@1.0.0", reason="wrong sign")
    assert registry.list()[0].yanked == ("1.0.0",)
