"""Signed modules: bundles in the OpenSSF model-signing format, trust policies on pull."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modreg.errors import ConfigError, SignatureError
from modreg.signing import (
    Digests,
    check_signatures,
    export_signatures,
    folder_hashes,
    load_trusted_keys,
    sign,
    sign_folder,
    trusted_keys_from_env,
    trusted_pull,
    verify_bundle,
)
from tests._helpers import run_cli, write_keypair

if TYPE_CHECKING:
    from modreg.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "modules"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path / "keys"
    directory.mkdir()
    return {name: write_keypair(directory, name) for name in ("team", "other")}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(MODULES / "drag-mlp", tmp_path / "drag-mlp"))


def _tamper(bundle: bytes, edit: str) -> bytes:
    data = json.loads(bundle)
    envelope = data["dsseEnvelope"]
    if edit == "payload":
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["resources"][0]["digest"] = "0" * 64
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    elif edit == "sig":
        raw = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
        raw[-1] ^= 1
        envelope["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(data).encode()


# -- a folder and its bundle -------------------------------------------------------------------
def test_bundle_lists_every_file_and_verifies(folder: Path, keys: dict[str, tuple[Path, Path]]):
    bundle = sign_folder(folder, keys["team"][0])
    trusted = load_trusted_keys([keys["team"][1]])
    statement = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    listed = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    assert listed == folder_hashes(folder)
    assert set(listed) == {"modreg.yaml", "weights.safetensors"}
    assert verify_bundle(bundle, Digests.of_folder(folder), trusted).source == str(keys["team"][1])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("payload", "does not verify"),
        ("sig", "does not verify"),
        ("truncate", "damaged or truncated"),
        ("garbage", "damaged or truncated"),
    ],
)
def test_tampered_or_truncated_bundle_is_one_clear_error(
    folder: Path, keys: dict[str, tuple[Path, Path]], edit: str, message: str
) -> None:
    bundle = sign_folder(folder, keys["team"][0])
    bad = {
        "truncate": bundle[: len(bundle) // 2],
        "garbage": b"\x00\xff not json",
    }.get(edit) or _tamper(bundle, edit)
    trusted = load_trusted_keys([keys["team"][1]])
    with pytest.raises(SignatureError, match=message) as info:
        verify_bundle(bad, Digests.of_folder(folder), trusted, ref="examples/drag-mlp@0.1.0")
    assert "\n" not in str(info.value)


def test_changed_file_and_extra_file_are_named(folder: Path, keys: dict[str, tuple[Path, Path]]):
    bundle = sign_folder(folder, keys["team"][0])
    trusted = load_trusted_keys([keys["team"][1]])
    (folder / "README.md").write_text("added after signing\n")
    with pytest.raises(SignatureError, match=r"README\.md not signed"):
        verify_bundle(bundle, Digests.of_folder(folder), trusted)
    (folder / "README.md").unlink()
    (folder / "modreg.yaml").write_text((folder / "modreg.yaml").read_text() + "\n")
    with pytest.raises(SignatureError, match=r"modreg\.yaml differs"):
        verify_bundle(bundle, Digests.of_folder(folder), trusted)


def test_unknown_key_names_the_signer(folder: Path, keys: dict[str, tuple[Path, Path]]):
    bundle = sign_folder(folder, keys["other"][0])
    trusted = load_trusted_keys([keys["team"][1]])
    with pytest.raises(SignatureError, match="not trusted") as info:
        verify_bundle(bundle, Digests.of_folder(folder), trusted, ref="x/y@1.0.0")
    assert trusted[0].short in str(info.value)


def _ed25519_pem(path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        (b"just text, no key\n", "no PEM block"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        ("ed25519", "not an elliptic-curve key"),
    ],
)
def test_malformed_trusted_key_files(tmp_path: Path, content: bytes | str | None, message: str):
    path = tmp_path / "team.pub"
    if content == "ed25519":
        _ed25519_pem(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(SignatureError, match=message) as info:
        trusted_keys_from_env({"MODREG_TRUSTED_KEYS": str(path)})
    assert str(path) in str(info.value)


def test_expired_certificate_is_refused(tmp_path: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "team")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "team.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(SignatureError, match="expired"):
        load_trusted_keys([path])


def test_no_policy_when_variable_is_unset() -> None:
    assert trusted_keys_from_env({}) is None


@pytest.mark.parametrize("value", ["", " ", ":", "::", " : ", "\t", ": :"])
def test_a_policy_that_names_no_key_refuses(value: str) -> None:
    """``"$A:$B"`` with both unset is ``:``: that must not switch the policy off."""
    with pytest.raises(ConfigError, match="names no file"):
        trusted_keys_from_env({"MODREG_TRUSTED_KEYS": value})


def test_signing_key_must_be_ec(folder: Path, tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "ed.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SignatureError, match="P-256"):
        sign_folder(folder, path)
    (tmp_path / "junk.key").write_text("nope")
    with pytest.raises(SignatureError, match="not a usable PEM private key"):
        sign_folder(folder, tmp_path / "junk.key")


def _upstream_verify(folder: Path, bundle: Path, public: Path) -> subprocess.CompletedProcess[str]:
    """The OpenSSF tool itself, as a user runs it: ``model_signing verify key``."""
    command = [sys.executable, "-m", "model_signing", "verify", "key", str(folder)]
    command += ["--signature", str(bundle), "--public_key", str(public)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_upstream_cli_verifies_a_folder_and_its_bundle(
    folder: Path, keys: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    bundle = tmp_path / "model.sig"
    bundle.write_bytes(sign_folder(folder, keys["team"][0]))
    good = _upstream_verify(folder, bundle, keys["team"][1])
    assert good.returncode == 0, good.stderr + good.stdout
    assert _upstream_verify(folder, bundle, keys["other"][1]).returncode != 0


# -- in the registry ---------------------------------------------------------------------------
@pytest.fixture
def registry(registry_path: Path) -> Registry:
    from modreg.registry import Registry

    registry = Registry(registry_path)
    registry.publish(MODULES / "drag-mlp")
    registry.publish(MODULES / "gravity")
    return registry


def _tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and "tmp" not in p.parts
    }


def test_sign_stores_bundles_beside_the_record_without_changing_the_digest(
    registry: Registry, keys: dict[str, tuple[Path, Path]]
) -> None:
    before = registry.resolve("examples/drag-mlp@0.1.0")
    first = sign(registry, "examples/drag-mlp@0.1.0", keys["team"][0])
    again = sign(registry, "examples/drag-mlp@0.1.0", keys["team"][0])
    second = sign(registry, "examples/drag-mlp@0.1.0", keys["other"][0])
    assert first.created and not again.created and second.created
    assert set(registry.signatures(first.ref)) == {first.signer, second.signer}
    assert registry.resolve(first.ref).digest == before.digest
    trusted = load_trusted_keys([keys["team"][1], keys["other"][1]])
    assert [c.status for c in check_signatures(registry, trusted)] == ["ok", "ok"]
    only_team = check_signatures(registry, trusted[:1])
    assert sorted(c.status for c in only_team) == ["ok", "unknown"]


def test_trust_policy_refuses_unsigned_and_untrusted_pulls(
    registry: Registry, keys: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    sign(registry, "examples/drag-mlp@0.1.0", keys["other"][0])
    trusted = load_trusted_keys([keys["team"][1]])
    target = tmp_path / "pulled"
    with pytest.raises(SignatureError, match=r"refusing physics/gravity@1\.0\.0: it is not signed"):
        trusted_pull(registry, "physics/gravity", to=target, keys=trusted)
    assert not target.exists()
    with pytest.raises(SignatureError, match=r"examples/drag-mlp@0\.1\.0.*not trusted") as info:
        trusted_pull(registry, "examples/drag-mlp", to=target, keys=trusted)
    assert trusted[0].short in str(info.value)
    assert not target.exists()
    sign(registry, "examples/drag-mlp@0.1.0", keys["team"][0])
    module = trusted_pull(registry, "examples/drag-mlp", to=target, keys=trusted)
    assert module.path == target
    assert trusted_pull(registry, "physics/gravity", keys=None).name == "physics/gravity"


def test_a_tampered_stored_bundle_is_reported_and_refused(
    registry: Registry, keys: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    ref = "examples/drag-mlp@0.1.0"
    pulled = registry.pull(ref, to=tmp_path / "clean")
    bad = _tamper(sign_folder(pulled.path, keys["team"][0]), "payload")
    trusted = load_trusted_keys([keys["team"][1]])
    signer = trusted[0].fingerprint
    assert registry.add_signature(ref, signer, bad)
    (check,) = check_signatures(registry, trusted)
    assert check.status == "bad"
    assert "differs" in check.message or "does not verify" in check.message
    with pytest.raises(SignatureError, match="refusing"):
        trusted_pull(registry, ref, to=tmp_path / "pulled", keys=trusted)


def test_a_stored_bundle_verifies_upstream_beside_a_pulled_folder(
    registry: Registry, keys: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    ref = "examples/drag-mlp@0.1.0"
    sign(registry, ref, keys["team"][0])
    module = registry.pull(ref, to=tmp_path / "drag-mlp")
    (bundle,) = export_signatures(registry, ref, tmp_path / "sigs")
    result = _upstream_verify(module.path, bundle, keys["team"][1])
    assert result.returncode == 0, result.stderr + result.stdout


def test_cli_sign_verify_and_pull_under_a_policy(
    registry: Registry,
    registry_path: Path,
    keys: dict[str, tuple[Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = "examples/drag-mlp@0.1.0"
    code, out, _ = run_cli(["sign", ref, "--key", keys["team"][0], "-r", registry_path], capsys)
    assert code == 0
    assert out.startswith(f"signed {ref} by ")
    monkeypatch.setenv("MODREG_TRUSTED_KEYS", str(keys["team"][1]))
    code, out, _ = run_cli(["verify", "--signatures", "-r", registry_path], capsys)
    assert code == 0, out
    assert f"OK {ref}" in out
    code, out, err = run_cli(["pull", ref, "--to", tmp_path / "a", "-r", registry_path], capsys)
    assert code == 0, err
    records = _tree(registry_path)
    code, _, err = run_cli(["pull", "physics/gravity", "-r", registry_path], capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("error: refusing physics/gravity@1.0.0")
    assert _tree(registry_path) == records
    missing = tmp_path / "none.key"
    code, _, err = run_cli(["sign", ref, "--key", missing, "-r", registry_path], capsys)
    assert code == 1
    assert err.startswith("error: key ")
    assert _tree(registry_path) == records


def test_blake3_statements_verify_here_and_upstream(
    registry: Registry, keys: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    ref = "examples/drag-mlp@0.1.0"
    result = sign(registry, ref, keys["team"][0], algorithm="blake3")
    bundle = registry.signatures(ref)[result.signer]
    statement = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    assert {r["algorithm"] for r in statement["predicate"]["resources"]} == {"blake3"}
    trusted = load_trusted_keys([keys["team"][1]])
    module = trusted_pull(registry, ref, to=tmp_path / "pulled", keys=trusted)
    assert [c.status for c in check_signatures(registry, trusted)] == ["ok"]
    (path,) = export_signatures(registry, ref, tmp_path / "sigs")
    # the upstream CLI hashes with sha256 only; its Python API reads the statement's hash
    script = (
        "import sys, model_signing.verifying as v; v.Config().use_elliptic_key_verifier("
        "public_key=sys.argv[3]).verify(sys.argv[1], sys.argv[2])"
    )
    upstream = subprocess.run(
        [sys.executable, "-c", script, str(module.path), str(path), str(keys["team"][1])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert upstream.returncode == 0, upstream.stderr + upstream.stdout
    (module.path / "modreg.yaml").write_text("changed after the pull\n")
    with pytest.raises(SignatureError, match=r"modreg\.yaml differs"):
        verify_bundle(bundle, Digests.of_folder(module.path), trusted)
    with pytest.raises(SignatureError, match="not supported"):
        sign(registry, "physics/gravity", keys["team"][0], algorithm="md5")
