"""Signed modules: OpenSSF model-signing bundles made, stored, checked and enforced on pull.

A signature is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) holding
a DSSE envelope over an in-toto statement whose predicate lists every file of the module
with its sha256 (or, with ``--hash blake3``, its BLAKE3): the format of the
``model_signing`` package, so a pulled folder and its bundle verify with ``model_signing
verify key`` too. Bundles are made by that package's elliptic-key signer (P-256/384/521
keys, PEM); they live beside the version's record (:meth:`Registry.add_signature`) and never
change the module digest. A signer is named by the sha256 of its public key (the
SubjectPublicKeyInfo PEM), the key hint the bundle carries.

Verification (:mod:`modreg.trust`, below the registry) uses ``cryptography`` alone:
importing ``model_signing`` costs about 0.35 s, more than a whole pull. A trust policy,
``MODREG_TRUSTED_KEYS=path[:path...]``, is enforced by :meth:`Registry.pull` itself, so no
caller can pull past it; this module makes signatures and judges the stored ones.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from modreg._content import MANIFEST_FILE
from modreg.errors import IntegrityError, ModuleNotFound, SignatureError
from modreg.registry._records import check_identity
from modreg.trust import (
    HASHES,
    Digests,
    SignatureCheck,
    TrustedKey,
    TrustPolicy,
    fingerprint,
    folder_hashes,
    judge,
    load_trusted_keys,
    private_key,
    require_crypto,
    trusted_keys_from_env,
    verify_bundle,
)

if TYPE_CHECKING:
    from modreg.module import Module
    from modreg.registry import Registry, VersionRecord

__all__ = [
    "Digests",
    "SignResult",
    "SignatureCheck",
    "TrustPolicy",
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


@dataclasses.dataclass(frozen=True)
class SignResult:
    """Outcome of ``modreg sign``: ``created`` is False when this signer had already signed."""

    ref: str
    signer: str
    created: bool


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
    # The signer vouches for the bytes, so it reads them before any policy could: the same
    # registry with the policy off, every byte and the manifest's identity still checked.
    unchecked = _under(registry, None)
    with tempfile.TemporaryDirectory(prefix="modreg-sign-") as tmp:
        folder = Path(tmp) / record.name.rpartition("/")[2]
        unchecked.pull(record.ref, to=folder)
        bundle = sign_folder(folder, key, password=password, algorithm=algorithm)
    verify_bundle(bundle, Digests.of_record(record), [me], ref=record.ref)
    created = registry.add_signature(record.ref, me.fingerprint, bundle)
    return SignResult(record.ref, me.fingerprint, bool(created))


def check_signatures(
    registry: Registry, keys: Sequence[TrustedKey] = (), refs: Sequence[str] | None = None
) -> list[SignatureCheck]:
    """Judge every stored signature (of ``refs``, default: every version).

    Structure and file digests are checked for every signature; the signature itself for
    those by a key in ``keys`` (others are ``unknown``: a bundle cannot be checked without
    its public key).
    """
    if refs is None:  # every version recorded, not only those the index lists
        refs = registry.refs()
    checks = []
    for ref in refs:
        record = registry.resolve(ref)
        digests = Digests.of_record(record)
        bound = _bound(registry, record)
        for signer, bundle in sorted(registry.signatures(record.ref).items()):
            if bound is not None:  # a bundle covers a manifest that names another version
                checks.append(SignatureCheck(record.ref, signer, "bad", bound))
                continue
            checks.append(judge(record.ref, signer, bundle, digests, keys))
    return checks


def _bound(registry: Registry, record: VersionRecord) -> str | None:
    """Why the signatures of ``record`` cannot be its own (its manifest is another's), or None.

    A bundle lists file hashes, and the manifest among those files names ``name@version``:
    a record copied under another version keeps every hash, so the manifest decides.
    """
    try:
        check_identity(record, registry.read_file(record, MANIFEST_FILE))
    except IntegrityError as exc:
        return f"the signed files are not this version's: {exc}"
    except ModuleNotFound:
        return f"{record.ref} lists no {MANIFEST_FILE}, so no signature can bind it"
    return None


def enforce_trust(
    registry: Registry,
    record: VersionRecord | Module,
    folder: str | Path,
    keys: Sequence[TrustedKey],
) -> TrustedKey:
    """Refuse ``folder`` unless one of ``keys`` validly signed its files.

    :meth:`Registry.pull` does this on every pull under a policy; this is for a folder
    obtained otherwise. See :meth:`modreg.trust.TrustPolicy.enforce`.

    Raises:
        SignatureError: no signature, or none valid by a key in ``keys``.
        ConfigError: ``keys`` is empty.
    """
    return TrustPolicy(tuple(keys)).enforce(record, folder, registry.signatures(record.ref))


def trusted_pull(
    registry: Registry,
    ref: str,
    *,
    to: str | Path | None = None,
    keys: Sequence[TrustedKey] | None = None,
) -> Module:
    """``registry.pull`` under ``keys`` (default: the registry's own policy).

    Every pull enforces the registry's policy (``MODREG_TRUSTED_KEYS``); ``keys`` adds one
    for this pull. A refused module's fresh ``to`` folder is removed again.

    Raises:
        SignatureError: a policy refuses the module.
    """
    if keys is None:
        return registry.pull(ref, to=to)
    return _under(registry, TrustPolicy(tuple(keys))).pull(ref, to=to)


def _under(registry: Registry, policy: TrustPolicy | None) -> Registry:
    """The same registry (store, offline mode, settings) under ``policy`` (None: no policy)."""
    settings = registry.settings
    if policy is None:
        settings = dataclasses.replace(settings, trusted_keys=None)
    return type(registry)(registry.store, offline=registry.offline, settings=settings, trust=policy)


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
