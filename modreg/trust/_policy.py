"""The trust policy: which keys a module must be signed by before a pull hands it over.

``MODREG_TRUSTED_KEYS=path[:path...]`` names PEM public keys or certificates. The policy is
enforced in one place, :meth:`modreg.Registry.pull`, so every way a module's files reach a
caller (``modreg pull``, a hybrid's parts, a distillation teacher, ``check replace``,
``lock``, ``check dependents``, an MLflow model) meets it. A variable that is set but names
no key is refused, never read as "no policy".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modreg.errors import ConfigError, SignatureError
from modreg.trust._bundle import Described, Digests, verify_bundle
from modreg.trust._keys import TRUST_ENV, TrustedKey, load_trusted_keys

__all__ = ["TrustPolicy"]


@dataclass(frozen=True)
class TrustPolicy:
    """The keys whose valid signature a module needs; never empty.

    Raises:
        ConfigError: no key at all (a policy that trusts nobody would refuse every pull
            while looking like a policy; say which variable to fix instead).
    """

    keys: tuple[TrustedKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigError(
                f"the trust policy names no key: list PEM public keys in {TRUST_ENV} "
                "(path[:path...]), or unset it to pull without a policy"
            )

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> TrustPolicy:
        """The policy of the key files ``paths`` (see :func:`load_trusted_keys`)."""
        return cls(load_trusted_keys(paths))

    @property
    def trusted(self) -> str:
        return ", ".join(f"{k.short} ({k.source})" for k in self.keys)

    def enforce(
        self, module: Described, folder: str | Path, bundles: Mapping[str, bytes]
    ) -> TrustedKey:
        """Refuse ``folder`` unless a trusted key validly signed its files.

        ``folder`` holds ``module``'s files, every byte checked against its record's BLAKE3:
        a statement listing BLAKE3 is compared with those (the bytes are not read again);
        one listing sha256 (the format's default) is compared with the folder hashed again,
        never with the record's claims, since a signature must hold even against a registry
        that was written to.

        Raises:
            SignatureError: no signature, or none valid by a trusted key; the message names
                the module and the keys.
        """
        if not bundles:
            raise SignatureError(
                f"refusing {module.ref}: it is not signed, and {TRUST_ENV} trusts only signed "
                f"modules (keys {self.trusted}); sign it with 'modreg sign {module.ref} --key KEY'"
            )
        digests = Digests.of_pull(module, folder)
        reasons = []
        for signer, bundle in sorted(bundles.items()):
            if not any(k.fingerprint == signer for k in self.keys):
                reasons.append(f"key {signer[:16]} is not trusted")
                continue
            try:
                return verify_bundle(bundle, digests, self.keys, ref=module.ref)
            except SignatureError as exc:
                reasons.append(str(exc))
        raise SignatureError(
            f"refusing {module.ref}: no valid signature from a trusted key "
            f"({'; '.join(reasons)}; trusted: {self.trusted})"
        )
