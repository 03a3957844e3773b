"""Keys for model signing: EC keys in PEM, their fingerprints, and the trusted key files.

A signer is named by the sha256 of its public key's SubjectPublicKeyInfo PEM, the key hint
``model_signing`` writes into its bundles. The trust policy is ``MODREG_TRUSTED_KEYS``
(``path[:path...]``): PEM public keys, or X.509 certificates whose validity dates are
checked, several per file allowed; each problem with a file is one line naming it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg.errors import ConfigError, ModregError, SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

__all__ = [
    "TRUST_ENV",
    "TrustedKey",
    "fingerprint",
    "load_trusted_keys",
    "private_key",
    "require_crypto",
    "trusted_keys_from_env",
]

TRUST_ENV = "MODREG_TRUSTED_KEYS"
_PEM_BLOCK = "-----BEGIN "


@dataclass(frozen=True)
class TrustedKey:
    """A public key a trust policy accepts, with where it came from (for messages)."""

    fingerprint: str
    source: str
    key: EllipticCurvePublicKey

    @property
    def short(self) -> str:
        return self.fingerprint[:16]


def fingerprint(key: EllipticCurvePublicKey) -> str:
    """sha256 hex of the key's SubjectPublicKeyInfo PEM: the hint model_signing writes."""
    from cryptography.hazmat.primitives import serialization

    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def _ec_key(key: object, source: str) -> EllipticCurvePublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError(
            f"key {source} is a {type(key).__name__.lstrip('_')}, not an elliptic-curve key: "
            "model signing needs EC P-256 keys (openssl ecparam -name prime256v1 -genkey)"
        )
    if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
        raise SignatureError(f"key {source} uses curve {key.curve.name}: use P-256 (prime256v1)")
    return key


def _public_from_block(block: bytes, source: str) -> EllipticCurvePublicKey:
    from cryptography.hazmat.primitives import serialization

    try:
        if b"CERTIFICATE" in block.split(b"\n", 1)[0]:
            from cryptography import x509

            cert = x509.load_pem_x509_certificate(block)
            now = dt.datetime.now(dt.UTC)
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise SignatureError(
                    f"certificate {source} is valid only from {cert.not_valid_before_utc:%Y-%m-%d}"
                    f" to {cert.not_valid_after_utc:%Y-%m-%d}: it has expired or is not yet "
                    "valid; ask its owner for a current one"
                )
            return _ec_key(cert.public_key(), source)
        return _ec_key(serialization.load_pem_public_key(block), source)
    except ValueError as exc:
        if isinstance(exc, ModregError):
            raise
        raise SignatureError(
            f"key file {source} is not a PEM public key or certificate ({exc}): export one "
            "with 'openssl ec -in KEY -pubout'"
        ) from None


def require_crypto(what: str) -> None:
    """Signing needs the ``sign`` extra; say so instead of failing on an import."""
    import importlib.util

    # model-signing 1.1 imports OpenSSL (pyopenssl) without declaring it
    for package in ("cryptography", "model_signing", "OpenSSL"):
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"{what} needs the {package} package: pip install 'modreg[sign]'")


def load_trusted_keys(paths: Sequence[str | Path]) -> tuple[TrustedKey, ...]:
    """Read PEM public keys (or certificates, checked for expiry) from ``paths``.

    Raises:
        SignatureError: a file is missing, holds no PEM block, or a key is not EC.
        ConfigError: the ``sign`` extra is not installed.
    """
    require_crypto(f"a trust policy ({TRUST_ENV})")
    keys: list[TrustedKey] = []
    for path in paths:
        source = str(path)
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise SignatureError(
                f"trusted key file {source} cannot be read ({exc.strerror}): fix "
                f"{TRUST_ENV} or the path"
            ) from None
        blocks = [_PEM_BLOCK.encode() + b for b in text.split(_PEM_BLOCK.encode())[1:]]
        if not blocks:
            raise SignatureError(
                f"trusted key file {source} holds no PEM block: give a public key "
                "('-----BEGIN PUBLIC KEY-----')"
            )
        for index, block in enumerate(blocks):
            where = source if len(blocks) == 1 else f"{source}[{index}]"
            key = _public_from_block(block, where)
            keys.append(TrustedKey(fingerprint(key), where, key))
    return tuple(keys)


def trusted_keys_from_env(
    environ: Mapping[str, str] | None = None,
) -> tuple[TrustedKey, ...] | None:
    """The trust policy of ``MODREG_TRUSTED_KEYS`` (None: no policy, every pull allowed).

    Raises:
        SignatureError: a listed file cannot be used as a key.
        ConfigError: the variable is set but names no file (``":"``, ``" "``).
    """
    from modreg._config import Settings

    paths = Settings.from_env(environ).trusted_keys
    return None if paths is None else load_trusted_keys(list(paths))


def private_key(key_path: Path, password: str | None) -> Any:
    """The EC private key in ``key_path``, with key problems turned into one line."""
    from cryptography.hazmat.primitives import serialization

    try:
        data = key_path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"key {key_path} cannot be read ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(
            f"key {key_path} is not a usable PEM private key ({exc}): give an EC P-256 key "
            "(openssl ecparam -name prime256v1 -genkey -noout -out team.key)"
        ) from None
    _ec_key(key.public_key(), str(key_path))
    return key
