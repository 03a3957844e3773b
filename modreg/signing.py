"""Signed modules: OpenSSF model-signing bundles made, stored, checked and enforced on pull.

A signature is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) holding
a DSSE envelope over an in-toto statement whose predicate lists every file of the module
with its sha256 (or, with ``--hash blake3``, its BLAKE3): the format of the
``model_signing`` package, so a pulled folder and its bundle verify with ``model_signing
verify key`` too. Bundles are made by that package's elliptic-key signer (P-256/384/521
keys, PEM); they live beside the version's record (:meth:`Registry.add_signature`) and never
change the module digest. A signer is named by the sha256 of its public key (the
SubjectPublicKeyInfo PEM), the key hint the bundle carries.

Verification is done here, with ``cryptography`` alone, checking what the upstream verifier
checks (key hint, ECDSA over the DSSE pre-authentication encoding, payload and predicate
types, the statement's root digest, every file and no other): importing ``model_signing``
costs about 0.35 s, more than a whole pull, and a trust policy sits on the pull path.

A trust policy, ``MODREG_TRUSTED_KEYS=path[:path...]`` (PEM public keys or certificates,
several per file allowed), makes pulls refuse modules without a valid signature from one
of those keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modreg._signing_keys import (
    TRUST_ENV,
    TrustedKey,
    fingerprint,
    load_trusted_keys,
    private_key,
    require_crypto,
    trusted_keys_from_env,
)
from modreg.errors import SignatureError

if TYPE_CHECKING:
    from modreg.module import Module
    from modreg.registry import Registry, VersionRecord

__all__ = [
    "Digests",
    "SignResult",
    "SignatureCheck",
    "TrustedKey",
    "check_signatures",
    "enforce_trust",
    "export_signatures",
    "folder_hashes",
    "load_trusted_keys",
    "sign",
    "sign_folder",
    "trusted_keys_from_env",
    "trusted_pull",
    "verify_bundle",
]

BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
HASHES = ("sha256", "blake3")
MAX_BUNDLE_BYTES = 1 << 22  # a module has few files: a bigger bundle is not one of ours


@dataclass(frozen=True)
class SignResult:
    """Outcome of ``modreg sign``: ``created`` is False when this signer had already signed."""

    ref: str
    signer: str
    created: bool


@dataclass(frozen=True)
class SignatureCheck:
    """One stored signature judged: ``ok``, ``bad`` (forged, damaged) or ``unknown`` (key)."""

    ref: str
    signer: str
    status: str
    message: str

    def line(self) -> str:
        return f"{self.status.upper()} {self.ref} signer {self.signer[:16]}: {self.message}"


# -- signing -----------------------------------------------------------------------------------
def sign_folder(
    folder: str | Path,
    key: str | Path,
    *,
    password: str | None = None,
    algorithm: str = "sha256",
) -> bytes:
    """A model-signing bundle over every file of ``folder``, made by the upstream signer.

    Args:
        algorithm: the file hash the statement lists, ``sha256`` (the format's default) or
            ``blake3`` (what modreg records verify on every pull, so a trusted pull needs no
            second pass over the bytes).

    Raises:
        SignatureError: the key cannot be used, or the algorithm is not one of those two.
    """
    from model_signing import hashing
    from model_signing._signing import sign_ec_key
    from model_signing._signing import signing as ms_signing

    if algorithm not in HASHES:
        raise SignatureError(f"hash {algorithm!r} is not supported: use one of {list(HASHES)}")
    private_key(Path(key), password)
    signer = sign_ec_key.Signer(Path(key), password)
    chosen: Literal["sha256", "blake3"] = "blake3" if algorithm == "blake3" else "sha256"
    config = hashing.Config().use_file_serialization(hashing_algorithm=chosen)  # type: ignore[no-untyped-call]
    signature = signer.sign(ms_signing.Payload(config.hash(Path(folder))))
    with tempfile.TemporaryDirectory(prefix="modreg-sign-") as tmp:
        out = Path(tmp) / "model.sig"
        signature.write(out)
        return out.read_bytes()


def sign(
    registry: Registry,
    ref: str,
    key: str | Path,
    *,
    password: str | None = None,
    algorithm: str = "sha256",
) -> SignResult:
    """Sign a published version: pull it fresh, sign its files, store the bundle beside it.

    Signing again with the same key changes nothing (ECDSA is randomised: a second bundle
    would be other bytes, and stored signatures are immutable).

    Raises:
        SignatureError: the key cannot be used, or the bundle would not verify.
        ModuleNotFound: ``ref`` resolves to nothing.
    """
    require_crypto("modreg sign")
    record = registry.resolve(ref)
    public = private_key(Path(key), password).public_key()  # key problems before any pull
    me = TrustedKey(fingerprint(public), str(key), public)
    stored = registry.signatures(record.ref).get(me.fingerprint)
    if stored is not None:
        verify_bundle(stored, Digests.of_record(record), [me], ref=record.ref)
        return SignResult(record.ref, me.fingerprint, created=False)
    with tempfile.TemporaryDirectory(prefix="modreg-sign-") as tmp:
        folder = Path(tmp) / record.name.rpartition("/")[2]
        registry.pull(record.ref, to=folder)
        bundle = sign_folder(folder, key, password=password, algorithm=algorithm)
    verify_bundle(bundle, Digests.of_record(record), [me], ref=record.ref)
    created = registry.add_signature(record.ref, me.fingerprint, bundle)
    return SignResult(record.ref, me.fingerprint, bool(created))


# -- verification ------------------------------------------------------------------------------
def folder_hashes(folder: str | Path, algorithm: str = "sha256") -> dict[str, str]:
    """File name -> hex digest of every plain file in a (flat) module folder."""
    from blake3 import blake3

    hashes = {}
    for path in sorted(Path(folder).iterdir()):
        if algorithm == "blake3":
            hasher = blake3()
            hasher.update_mmap(path)
            hashes[path.name] = hasher.hexdigest()
            continue
        with path.open("rb") as handle:
            hashes[path.name] = hashlib.file_digest(handle, "sha256").hexdigest()
    return hashes


class Digests:
    """The digests a bundle is checked against, per algorithm, computed only when asked.

    ``of_record`` takes them from a version's record (``verify`` re-hashes the objects);
    ``of_pull`` from a folder just pulled: blake3 from the record, which the pull checked
    every byte against, sha256 by hashing the folder again.
    """

    def __init__(self, compute: Callable[[str], Mapping[str, str]]) -> None:
        self._compute = compute
        self._known: dict[str, Mapping[str, str]] = {}

    def of(self, algorithm: str) -> Mapping[str, str]:
        if algorithm not in self._known:
            self._known[algorithm] = self._compute(algorithm)
        return self._known[algorithm]

    @classmethod
    def of_folder(cls, folder: str | Path) -> Digests:
        return cls(lambda algorithm: folder_hashes(folder, algorithm))

    @classmethod
    def of_record(cls, record: VersionRecord | Module) -> Digests:
        return cls(lambda algorithm: _recorded(record, algorithm, None))

    @classmethod
    def of_pull(cls, record: VersionRecord | Module, folder: str | Path) -> Digests:
        return cls(lambda algorithm: _recorded(record, algorithm, Path(folder)))


def _recorded(
    record: VersionRecord | Module, algorithm: str, folder: Path | None
) -> Mapping[str, str]:
    blake3s = {e.path: e.blake3 for e in record.files if e.blake3 is not None}
    if algorithm == "blake3" and len(blake3s) == len(record.files):
        return blake3s
    if folder is not None:
        return folder_hashes(folder, algorithm)
    if algorithm == "sha256":
        return {e.path: e.sha256 for e in record.files}
    raise SignatureError(
        f"{record.ref} was recorded without blake3 hashes, which its signature lists: pull it "
        "and check the folder instead"
    )


def _parse_bundle(bundle: bytes, ref: str) -> dict[str, Any]:
    bad = f"signature bundle of {ref} is damaged or truncated"
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise SignatureError(f"{bad} ({len(bundle)} bytes, more than any module needs)")
    try:
        data = json.loads(bundle)
    except (ValueError, RecursionError):
        raise SignatureError(f"{bad} (not JSON): sign the module again") from None
    media = data.get("mediaType") if isinstance(data, dict) else None
    if not isinstance(media, str) or not media.startswith(BUNDLE_MEDIA_PREFIX):
        raise SignatureError(f"{bad} (not a Sigstore bundle): sign the module again")
    parsed: dict[str, Any] = data
    return parsed


def _bundle_hint(data: dict[str, Any]) -> str:
    hint = _get(data, "verificationMaterial", "publicKey", "hint")
    if not isinstance(hint, str) or len(hint) != 64 or set(hint) - set("0123456789abcdef"):
        raise SignatureError(
            "signature bundle names no public key (no 64-hex key hint): sign with modreg sign"
        )
    return hint


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _envelope(data: dict[str, Any], ref: str) -> tuple[bytes, bytes]:
    envelope = data.get("dsseEnvelope")
    try:
        assert isinstance(envelope, dict)
        if envelope.get("payloadType") != PAYLOAD_TYPE:
            raise SignatureError(
                f"signature of {ref} signs a {envelope.get('payloadType')!r} payload, not an "
                "in-toto statement"
            )
        signatures = envelope["signatures"]
        assert isinstance(signatures, list) and len(signatures) == 1
        payload = base64.b64decode(envelope["payload"], validate=True)
        sig = base64.b64decode(signatures[0]["sig"], validate=True)
    except (AssertionError, KeyError, TypeError, binascii.Error):
        raise SignatureError(
            f"signature bundle of {ref} is damaged or truncated (no well-formed DSSE envelope)"
        ) from None
    return payload, sig


def _pae(payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature is over."""
    head = f"DSSEv1 {len(PAYLOAD_TYPE)} {PAYLOAD_TYPE} {len(payload)} "
    return head.encode() + payload


def _check_signature(key: TrustedKey, payload: bytes, sig: bytes, ref: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    algorithm = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}
    try:
        key.key.verify(sig, _pae(payload), ec.ECDSA(algorithm[key.key.curve.key_size]))
    except InvalidSignature:
        raise SignatureError(
            f"signature of {ref} by key {key.short} ({key.source}) does not verify: the bundle "
            "was tampered with or made by another key; sign the module again"
        ) from None


def _statement_files(payload: bytes, ref: str) -> tuple[str, dict[str, str]]:
    """(hash algorithm, file name -> digest) the signed statement lists, root digest checked."""
    try:
        statement = json.loads(payload)
        assert statement["_type"] == STATEMENT_TYPE
        assert statement["predicateType"] == PREDICATE_TYPE
        (subject,) = statement["subject"]
        root = subject["digest"]["sha256"]
        serialization = statement["predicate"]["serialization"]
        assert serialization["method"] == "files"
        algorithm = serialization["hash_type"]
        files: dict[str, str] = {}
        total = hashlib.sha256()
        for resource in statement["predicate"]["resources"]:
            assert resource["algorithm"] == algorithm
            files[str(resource["name"])] = str(resource["digest"])
            total.update(bytes.fromhex(resource["digest"]))
    except (AssertionError, KeyError, TypeError, ValueError, RecursionError):
        raise SignatureError(
            f"signed statement of {ref} is not a model-signing v1.0 file manifest"
        ) from None
    if algorithm not in HASHES:
        raise SignatureError(f"signature of {ref} lists {algorithm} hashes: modreg checks {HASHES}")
    if total.hexdigest() != root:
        raise SignatureError(f"signed statement of {ref} is inconsistent (root digest differs)")
    return algorithm, files


def _compare_files(signed: Mapping[str, str], actual: Mapping[str, str], ref: str) -> None:
    problems = [f"{n} not signed" for n in sorted(set(actual) - set(signed))]
    problems += [f"{n} missing" for n in sorted(set(signed) - set(actual))]
    common = sorted(set(signed) & set(actual))
    problems += [f"{n} differs" for n in common if signed[n] != actual[n]]
    if problems:
        raise SignatureError(
            f"signature of {ref} does not cover its files ({', '.join(problems)}): the module "
            "or the bundle changed after signing"
        )


def verify_bundle(
    bundle: bytes, digests: Digests, keys: Sequence[TrustedKey], *, ref: str = "module"
) -> TrustedKey:
    """Check ``bundle`` signs exactly the files ``digests`` describes, with one of ``keys``.

    Returns:
        The key that signed.

    Raises:
        SignatureError: the bundle is damaged, by a key not in ``keys``, forged, or signs
            other files.
    """
    data = _parse_bundle(bundle, ref)
    hint = _bundle_hint(data)
    payload, sig = _envelope(data, ref)
    key = next((k for k in keys if k.fingerprint == hint), None)
    if key is None:
        raise SignatureError(
            f"{ref} is signed by key {hint[:16]}, which is not trusted "
            f"(trusted: {', '.join(k.short for k in keys) or 'none'})"
        )
    _check_signature(key, payload, sig, ref)
    algorithm, signed = _statement_files(payload, ref)
    _compare_files(signed, digests.of(algorithm), ref)
    return key


def _judge(
    ref: str, signer: str, bundle: bytes, digests: Digests, keys: Sequence[TrustedKey]
) -> SignatureCheck:
    try:
        data = _parse_bundle(bundle, ref)
        hint = _bundle_hint(data)
        if hint != signer:
            raise SignatureError(f"bundle stored as signer {signer[:16]} names key {hint[:16]}")
        payload, _ = _envelope(data, ref)
        algorithm, signed = _statement_files(payload, ref)
        _compare_files(signed, digests.of(algorithm), ref)
        if not any(k.fingerprint == signer for k in keys):
            return SignatureCheck(ref, signer, "unknown", "covers every file; key not trusted here")
        key = verify_bundle(bundle, digests, keys, ref=ref)
    except SignatureError as exc:
        return SignatureCheck(ref, signer, "bad", str(exc))
    return SignatureCheck(ref, signer, "ok", f"valid, by trusted key {key.source}")


def check_signatures(
    registry: Registry, keys: Sequence[TrustedKey] = (), refs: Sequence[str] | None = None
) -> list[SignatureCheck]:
    """Judge every stored signature (of ``refs``, default: every version).

    Structure and file digests are checked for every signature; the signature itself for
    those by a key in ``keys`` (others are ``unknown``: a bundle cannot be checked without
    its public key).
    """
    if refs is None:
        refs = [f"{row.name}@{v}" for row in registry.list() for v in row.versions]
    checks = []
    for ref in refs:
        record = registry.resolve(ref)
        digests = Digests.of_record(record)
        for signer, bundle in sorted(registry.signatures(record.ref).items()):
            checks.append(_judge(record.ref, signer, bundle, digests, keys))
    return checks


def enforce_trust(
    registry: Registry,
    record: VersionRecord | Module,
    folder: str | Path,
    keys: Sequence[TrustedKey],
) -> TrustedKey:
    """Refuse ``folder`` unless a trusted key validly signed its files.

    ``folder`` is what ``registry.pull`` of ``record`` returned, every byte checked against
    the record's blake3: a statement listing blake3 is compared with those (the bytes are
    not read again); one listing sha256 (the format's default) is compared with the folder
    hashed again, never with the record's claims, since a signature must hold even against
    a registry that was written to.

    Raises:
        SignatureError: no signature, or none valid by a key in ``keys``; the message names
            the module and the key(s).
    """
    bundles: dict[str, bytes] = registry.signatures(record.ref)
    trusted = ", ".join(f"{k.short} ({k.source})" for k in keys) or "none"
    if not bundles:
        raise SignatureError(
            f"refusing {record.ref}: it is not signed, and {TRUST_ENV} trusts only signed "
            f"modules (keys {trusted}); sign it with 'modreg sign {record.ref} --key KEY'"
        )
    digests = Digests.of_pull(record, folder)
    reasons = []
    for signer, bundle in sorted(bundles.items()):
        if not any(k.fingerprint == signer for k in keys):
            reasons.append(f"key {signer[:16]} is not trusted")
            continue
        try:
            return verify_bundle(bundle, digests, keys, ref=record.ref)
        except SignatureError as exc:
            reasons.append(str(exc))
    raise SignatureError(
        f"refusing {record.ref}: no valid signature from a trusted key ({'; '.join(reasons)}; "
        f"trusted: {trusted})"
    )


def trusted_pull(
    registry: Registry,
    ref: str,
    *,
    to: str | Path | None = None,
    keys: Sequence[TrustedKey] | None = None,
) -> Module:
    """``registry.pull`` under the trust policy (``keys``, default ``MODREG_TRUSTED_KEYS``).

    Without a policy this is a plain pull. With one, a refused module's fresh ``to`` folder
    is removed again (a cache copy stays: every pull under a policy checks it anew).

    Raises:
        SignatureError: the policy refuses the module (see :func:`enforce_trust`).
    """
    paths = registry.settings.trusted_keys
    policy: Sequence[TrustedKey] | None = keys
    if keys is None and paths:
        policy = load_trusted_keys(list(paths))
    if policy is None:
        return registry.pull(ref, to=to)
    fresh = to is not None and not Path(to).exists()
    module = registry.pull(ref, to=to)
    try:
        enforce_trust(registry, module, module.path, policy)
    except BaseException:
        if fresh:
            shutil.rmtree(module.path, ignore_errors=True)
        raise
    return module


def export_signatures(registry: Registry, ref: str, directory: str | Path) -> list[Path]:
    """Write each stored bundle of ``ref`` as ``DIR/<signer>.sig`` (for ``model_signing``)."""
    record = registry.resolve(ref)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for signer, bundle in sorted(registry.signatures(record.ref).items()):
        path = out / f"{signer}.sig"
        path.write_bytes(bundle)
        paths.append(path)
    return paths
