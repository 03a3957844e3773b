"""The local cache in front of every remote registry, and offline mode.

Objects are content-addressed, so one cache under ``$MODREG_HOME/store-cache`` serves every
registry: ``objects/sha256/...`` as in a store. Records are immutable too, and cached per
registry (``records/<registry id>/...``), so an exact pin resolves without a request. Every
object enters the cache verified (delivered from the remote with its hash checked) and is
checked again each time it is delivered from the cache; a damaged cached copy is dropped and
fetched again. With ``offline`` set, anything the cache cannot answer is an
:class:`OfflineError` naming what was needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from modreg._content import FileEntry
from modreg.errors import IntegrityError, OfflineError
from modreg.store import LocalStore, Store
from modreg.store._deliver import deliver
from modreg.store._keys import object_key
from modreg.store.local import copy_file

__all__ = ["RemoteCache"]


class RemoteCache:
    """A local store holding verified copies of one remote registry's immutable keys."""

    def __init__(self, root: Path, remote: Store, *, offline: bool) -> None:
        self.local = LocalStore(root)
        self.remote = remote
        self.offline = offline
        self._records = f"records/{hashlib.sha256(remote.location.encode()).hexdigest()[:16]}/"

    def offline_error(self, needed: str) -> OfflineError:
        return OfflineError(
            f"{needed} needs the network (registry {self.remote.location}) and "
            "MODREG_OFFLINE/--offline is set: pin an exact version that was pulled before, "
            "or go online"
        )

    # -- records -----------------------------------------------------------------------------
    def record(self, key: str, *, limit: int) -> bytes | None:
        """A record's bytes from the cache, else from the remote (then cached)."""
        cached = self.local.get(self._records + key, limit=limit)
        if cached is not None:
            return cached
        if self.offline:
            raise self.offline_error(f"record {key}")
        data = self.remote.get(key, limit=limit)
        if data is not None:
            self.local.put_if_absent(self._records + key, data)
        return data

    # -- objects -----------------------------------------------------------------------------
    def deliver(self, entry: FileEntry, target: Path) -> None:
        """Write ``entry``'s object to ``target``, from the cache (filled first if needed)."""
        key = object_key(entry.sha256)
        if self.local.head(key) is not None:
            try:
                deliver(self.local, entry, target)
                return
            except IntegrityError:  # a damaged cached copy: drop it and fetch again
                self.local.delete(key)
        if self.offline:
            raise self.offline_error(f"file {entry.path} (sha256:{entry.sha256[:12]})")
        deliver(self.remote, entry, target)  # every byte checked as it lands
        self._keep(target, entry)

    def _keep(self, delivered: Path, entry: FileEntry) -> None:
        """Put freshly verified bytes into the cache without copying them where possible.

        The cache entry is a hard link to the delivered file (a kernel copy across
        filesystems). Sharing the inode is safe because a cached object is checked on every
        use: if the pulled file is edited in place, the next use finds the damage, drops the
        entry and fetches again; nothing from the cache ever reaches a caller unchecked.
        """
        staged = self.local.temp_path()
        try:
            try:
                os.link(delivered, staged)
            except OSError:  # another filesystem, or links not allowed
                copy_file(delivered, staged)
            self.local.put_if_absent(object_key(entry.sha256), staged, sha256=entry.sha256)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
