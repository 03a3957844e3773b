"""Checking model-signing bundles: Sigstore bundles over an in-toto file manifest.

A signature is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) holding
a DSSE envelope over an in-toto statement whose predicate lists every file of the module
with its sha256 (or BLAKE3): the format of the ``model_signing`` package. Verification is
done here, with ``cryptography`` alone, checking what the upstream verifier checks (key
hint, ECDSA over the DSSE pre-authentication encoding, payload and predicate types, the
statement's root digest, every file and no other): importing ``model_signing`` costs about
0.35 s, more than a whole pull, and a trust policy sits on the pull path.

The statement covers ``modreg.yaml``, which names the module and its version, so a bundle
binds the ``name@version`` it was made for as long as the caller checks the manifest's
identity against the record it delivers (the registry does, on every pull).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modreg._content import FileEntry
from modreg.errors import SignatureError
from modreg.trust._keys import TrustedKey

__all__ = [
    "BUNDLE_MEDIA_PREFIX",
    "HASHES",
    "Described",
    "Digests",
    "SignatureCheck",
    "folder_hashes",
    "judge",
    "verify_bundle",
]

BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
HASHES = ("sha256", "blake3")
MAX_BUNDLE_BYTES = 1 << 22  # a module has few files: a bigger bundle is not one of ours


class Described(Protocol):
    """What a bundle is checked against: a version's files and its ``name@version``."""

    @property
    def files(self) -> tuple[FileEntry, ...]: ...

    @property
    def ref(self) -> str: ...


@dataclass(frozen=True)
class SignatureCheck:
    """One stored signature judged: ``ok``, ``bad`` (forged, damaged) or ``unknown`` (key)."""

    ref: str
    signer: str
    status: str
    message: str

    def line(self) -> str:
        return f"{self.status.upper()} {self.ref} signer {self.signer[:16]}: {self.message}"


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
    def of_record(cls, record: Described) -> Digests:
        return cls(lambda algorithm: _recorded(record, algorithm, None))

    @classmethod
    def of_pull(cls, record: Described, folder: str | Path) -> Digests:
        return cls(lambda algorithm: _recorded(record, algorithm, Path(folder)))


def _recorded(record: Described, algorithm: str, folder: Path | None) -> Mapping[str, str]:
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


def judge(
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
