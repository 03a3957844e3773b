"""What a pull delivers is what the registry holds, and the trust policy guards every door.

The attacks here are a writer's with raw access to the store (a bucket key, a shared disk):
records copied under another name or version, stores that share a URI text, and modules
reached through a side door (a hybrid's part, a teacher, a check, an MLflow model).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import modreg
from modreg.errors import ConfigError, IntegrityError, SignatureError
from modreg.registry import Registry
from modreg.registry._keys import record_key, signature_prefix
from modreg.store import MemoryStore
from tests._helpers import run_cli, write_keypair

_backends = pytest.importorskip("tests._backends")

MODULES = Path(__file__).resolve().parent.parent / "modules"


@pytest.fixture(params=_backends.BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    server = request.getfixturevalue("s3_env") if request.param == "s3" else None
    return _backends.make_backend(request.param, tmp_path, server)


def write_law(directory: Path, name: str = "t/law", version: str = "1.0.0", k: float = 2.0) -> Path:
    """A one-line equation module ``y = k * x``."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name,
        "version": version,
        "kind": "equation",
        "summary": f"y = {k} x",
        "inputs": {"x": {"unit": "m", "range": [0.0, 1.0]}},
        "outputs": {"y": {"unit": "m"}},
        "equation": {"y": f"{k} * x"},
    }
    (directory / "modreg.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def sign(registry: Registry, ref: str, key: Path) -> None:
    from modreg.signing import sign as run

    run(registry, ref, key)


# -- 1. the cache is keyed by the registry's identity, not its URI text ----------------------
def test_two_stores_with_one_uri_never_share_cached_records(tmp_path: Path) -> None:
    """``memory://ci`` in two processes: two stores, one URI text, other bytes each."""
    first, second = Registry(MemoryStore("ci")), Registry(MemoryStore("ci"))
    assert first.location == second.location
    a = first.publish(write_law(tmp_path / "a", k=2.0))
    b = second.publish(write_law(tmp_path / "b", k=3.0))
    assert a.digest != b.digest
    assert first.pull("t/law@1.0.0", to=tmp_path / "pa").digest == a.digest
    assert second.pull("t/law@1.0.0", to=tmp_path / "pb").digest == b.digest
    assert second.pull("t/law@>=1", to=tmp_path / "pc").digest == b.digest
    into_cache = [r.pull("t/law@1.0.0") for r in (first, second)]  # no --to: the local cache
    assert [m.digest for m in into_cache] == [a.digest, b.digest]
    assert "2.0 * x" in (into_cache[0].path / "modreg.yaml").read_text()  # left as it was


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_a_registry_made_again_under_its_uri_is_not_served_from_the_cache(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("s3_env") if kind == "s3" else None
    backend = _backends.make_backend(kind, tmp_path, server)
    old = backend.registry().publish(write_law(tmp_path / "a", k=2.0))
    backend.registry().pull(old.ref, to=tmp_path / "pa")  # cached now
    for key in backend.stored_keys():
        backend.delete_raw(key)
    new = backend.registry().publish(write_law(tmp_path / "b", k=3.0))
    pulled = backend.registry().pull(new.ref, to=tmp_path / "pb")
    assert pulled.digest == new.digest != old.digest
    assert "3.0 * x" in (pulled.path / "modreg.yaml").read_text()


# -- 2. a record must be its manifest's; a signature binds the version it was made for -------
def _forge(backend: Any, source: str, name: str, version: str, signed: bool = True) -> None:
    """Copy ``source``'s record (and bundles) under ``name@version``: every hash still holds."""
    registry = backend.registry()
    src_name, _, src_version = source.partition("@")
    record = json.loads(registry.store.get(record_key(src_name, src_version)) or b"")
    record["name"], record["version"] = name, version
    backend.put_raw(record_key(name, version), json.dumps(record, indent=2).encode())
    if signed:
        prefix = signature_prefix(src_name, src_version)
        for key in list(registry.store.list(prefix)):
            target = signature_prefix(name, version) + key[len(prefix) :]
            backend.put_raw(target, registry.store.get(key) or b"")


@pytest.mark.parametrize(("name", "version"), [("t/law", "2.0.0"), ("t/other", "1.0.0")])
def test_a_replayed_record_and_signature_deliver_nothing(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, version: str
) -> None:
    private, public = write_keypair(tmp_path)
    registry = backend.registry()
    registry.publish(write_law(tmp_path / "src"))
    sign(registry, "t/law@1.0.0", private)
    registry.yank("t/law@1.0.0", reason="wrong constant")
    _forge(backend, "t/law@1.0.0", name, version)
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    trusted = backend.registry()
    for ref in (f"{name}@{version}", f"{name}@>=1"):
        with pytest.raises(IntegrityError, match=r"delivers the manifest of t/law@1\.0\.0"):
            trusted.pull(ref, to=tmp_path / "out")
        assert not (tmp_path / "out").exists()
        with pytest.raises(IntegrityError, match="copied or forged"):
            trusted.pull(ref)  # into the cache: nothing left there either
    with pytest.raises(IntegrityError, match="copied or forged"):
        trusted.manifest(f"{name}@{version}")
    with pytest.raises(IntegrityError, match="copied or forged"):
        trusted.copy(f"{name}@{version}", Registry(tmp_path / "mirror"))
    from modreg.signing import check_signatures, load_trusted_keys

    verdicts = {c.ref: c.status for c in check_signatures(trusted, load_trusted_keys([public]))}
    assert verdicts == {"t/law@1.0.0": "ok", f"{name}@{version}": "bad"}


def test_cli_verify_signatures_calls_a_replayed_bundle_bad(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    backend = _backends.make_backend("local", tmp_path, None)
    private, public = write_keypair(tmp_path)
    registry = backend.registry()
    registry.publish(write_law(tmp_path / "src"))
    sign(registry, "t/law@1.0.0", private)
    _forge(backend, "t/law@1.0.0", "t/law", "2.0.0")
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    code, out, _ = run_cli(["verify", "--signatures", "--registry", backend.location], capsys)
    assert code == 1
    assert "BAD t/law@2.0.0" in out and "OK t/law@1.0.0" in out


# -- 3. the trust policy is enforced below every caller --------------------------------------
def _hybrid(tmp_path: Path, registry: Registry) -> Path:
    from tests._deps_helpers import DRAG_PART, write_hybrid

    registry.publish(MODULES / "drag")
    return write_hybrid(
        tmp_path / "ball", registry, "t/ball", {"drag": "physics/drag"}, wires=DRAG_PART
    )


def _door_hybrid_part(registry: Registry, tmp_path: Path) -> None:
    modreg.build(registry.pull("t/ball@1.0.0"), registry=registry)


def _door_teacher(registry: Registry, tmp_path: Path) -> None:
    from modreg.distill._teacher import load_teacher

    load_teacher("examples/drag-mlp@0.1.0", registry)


def _door_check_replace(registry: Registry, tmp_path: Path) -> None:
    from modreg.check.replace import load_module

    load_module("physics/drag@1.0.0", registry)


def _door_api(registry: Registry, tmp_path: Path) -> None:
    modreg.pull("physics/drag@1.0.0", registry=registry)


DOORS: dict[str, Callable[[Registry, Path], None]] = {
    "hybrid part": _door_hybrid_part,
    "distillation teacher": _door_teacher,
    "check replace": _door_check_replace,
    "modreg.pull": _door_api,
}


@pytest.mark.parametrize("door", sorted(DOORS))
def test_no_door_lets_an_unsigned_module_past_the_policy(
    door: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = write_keypair(tmp_path)
    registry = Registry(tmp_path / "registry")
    registry.publish(_hybrid(tmp_path, registry))
    registry.publish(MODULES / "drag-mlp")
    sign(registry, "t/ball@1.0.0", private)  # the hybrid is signed, its part is not
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    with pytest.raises(SignatureError, match=r"refusing .*: it is not signed"):
        DOORS[door](Registry(tmp_path / "registry"), tmp_path)


def test_a_fully_signed_hybrid_builds_under_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = write_keypair(tmp_path)
    registry = Registry(tmp_path / "registry")
    registry.publish(_hybrid(tmp_path, registry))
    for ref in ("t/ball@1.0.0", "physics/drag@1.0.0"):
        sign(registry, ref, private)
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    monkeypatch.setenv("MODREG_REGISTRY", str(tmp_path / "registry"))
    net = modreg.build(modreg.pull("t/ball@1.0.0"))
    assert sorted(net.parts) == ["drag"]


@pytest.mark.parametrize("value", [":", " ", "", "::"])
def test_a_policy_that_names_no_key_refuses_every_pull(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    Registry(tmp_path / "registry").publish(MODULES / "gravity")
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", value)
    code, out, err = run_cli(
        ["pull", "physics/gravity@1.0.0", "--to", str(tmp_path / "g"), "--registry",
         str(tmp_path / "registry")],
        capsys,
    )  # fmt: skip
    assert code == 1 and out == ""
    assert err.startswith("error: MODREG_TRUSTED_KEYS=") and err.count("\n") == 1
    assert not (tmp_path / "g").exists()
    with pytest.raises(ConfigError, match="names no file"):
        modreg.pull("physics/gravity@1.0.0", registry=tmp_path / "registry")


def test_signing_works_under_a_policy_that_the_module_does_not_meet_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signer reads the bytes it vouches for: a policy cannot stop the first signature."""
    private, public = write_keypair(tmp_path)
    registry = Registry(tmp_path / "registry")
    registry.publish(MODULES / "gravity")
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    registry = Registry(tmp_path / "registry")
    with pytest.raises(SignatureError):
        registry.pull("physics/gravity@1.0.0")
    sign(registry, "physics/gravity@1.0.0", private)
    assert registry.pull("physics/gravity@1.0.0").version == "1.0.0"


def test_mlflow_models_carry_signatures_and_loads_enforce_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    from modreg.mlflow import load_model, save_model

    private, public = write_keypair(tmp_path)
    registry = Registry(tmp_path / "registry")
    registry.publish(_hybrid(tmp_path, registry))
    sign(registry, "t/ball@1.0.0", private)
    hybrid = registry.pull("t/ball@1.0.0")
    save_model(hybrid, tmp_path / "half-signed", registry=registry)
    sign(registry, "physics/drag@1.0.0", private)
    save_model(hybrid, tmp_path / "signed", registry=registry)
    assert list((tmp_path / "signed" / "data" / "signatures").iterdir())
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(public))
    assert load_model(str(tmp_path / "signed")).module.ref == "t/ball@1.0.0"
    with pytest.raises(SignatureError, match=r"refusing physics/drag@1\.0\.0"):
        load_model(str(tmp_path / "half-signed"))
    shutil.rmtree(tmp_path / "signed" / "data" / "signatures" / "t+ball@1.0.0")
    with pytest.raises(SignatureError, match=r"refusing t/ball@1\.0\.0: it is not signed"):
        load_model(str(tmp_path / "signed"))
