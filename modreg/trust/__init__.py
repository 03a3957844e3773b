"""Trust: signing keys, checking model-signing bundles, and the policy a pull enforces.

This package sits below the registry (it knows files and hashes, not stores): the registry
calls :meth:`TrustPolicy.enforce` on every pull. Making signatures (``modreg sign``, which
needs the ``model_signing`` package) lives above, in :mod:`modreg.signing`.
"""

from __future__ import annotations

from modreg.trust._bundle import (
    HASHES,
    Described,
    Digests,
    SignatureCheck,
    folder_hashes,
    judge,
    verify_bundle,
)
from modreg.trust._keys import (
    TRUST_ENV,
    TrustedKey,
    fingerprint,
    load_trusted_keys,
    private_key,
    require_crypto,
    trusted_keys_from_env,
)
from modreg.trust._policy import TrustPolicy

__all__ = [
    "HASHES",
    "TRUST_ENV",
    "Described",
    "Digests",
    "SignatureCheck",
    "TrustPolicy",
    "TrustedKey",
    "fingerprint",
    "folder_hashes",
    "judge",
    "load_trusted_keys",
    "private_key",
    "require_crypto",
    "trusted_keys_from_env",
    "verify_bundle",
]
