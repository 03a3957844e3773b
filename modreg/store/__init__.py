"""Where a registry's bytes live: the :class:`Store` protocol and its implementations."""

from __future__ import annotations

from modreg.store._base import IndexEntry, ObjectProblem, Store
from modreg.store.local import LocalStore

__all__ = ["IndexEntry", "LocalStore", "ObjectProblem", "Store", "open_store"]


def open_store(location: str) -> Store:
    """Open the store at a path or ``file://`` URI.

    Raises:
        ConfigError: the URI scheme is not supported.
    """
    from modreg.errors import ConfigError

    if "://" in location:
        scheme, _, rest = location.partition("://")
        if scheme != "file":
            raise ConfigError(
                f"registry {location!r}: scheme {scheme!r} is not supported yet; "
                "give a local directory path or a file:// URI"
            )
        location = rest
    return LocalStore(location)
