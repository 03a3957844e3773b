"""Where a registry's bytes live: the :class:`Store` protocol and its backends.

``open_store`` maps a location to a backend through one table of URI schemes; a location
without a scheme is a local directory. Backends that need a client library import it when
they are first used, so naming them costs nothing, and a missing library is a ConfigError
naming its extra (``pip install 'modreg[s3]'``), never a bare ImportError. Opening does not
check for it: a registry served from the local cache (``--offline``) needs no client.
"""

from __future__ import annotations

from collections.abc import Callable

from modreg.store._base import AbstractStore, KeyInfo, Store
from modreg.store.local import LocalStore
from modreg.store.memory import MemoryStore

__all__ = ["AbstractStore", "KeyInfo", "LocalStore", "MemoryStore", "Store", "open_store"]


def _s3(rest: str) -> Store:
    from modreg.store.s3 import S3Store

    return S3Store.from_uri(rest)


BACKENDS: dict[str, Callable[[str], Store]] = {
    "file": LocalStore,
    "memory": MemoryStore.shared,
    "s3": _s3,
}


def open_store(location: str) -> Store:
    """Open the store at a path or URI (``file://PATH``, ``s3://BUCKET/PREFIX``, ``memory://N``).

    Raises:
        ConfigError: the URI scheme is not supported, or the URI is malformed.
    """
    from modreg.errors import ConfigError

    scheme, sep, rest = location.partition("://")
    if not sep:
        return LocalStore(location)
    factory = BACKENDS.get(scheme.lower())
    if factory is None:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise ConfigError(
            f"registry {location!r}: scheme {scheme!r} is not supported; use a directory path "
            f"or one of {known}"
        )
    return factory(rest)
