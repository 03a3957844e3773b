"""The local cache in front of every remote registry, and offline mode.

Objects are content-addressed and checked against a record's hashes on every use, so one
cache under ``$MODREG_HOME/store-cache`` serves every registry: ``objects/sha256/...`` as in a
store. Records and signature bundles are what bytes are checked *against*, so they are cached
per registry **identity**, never per URI text: the store's address (a local path; an endpoint,
bucket and prefix; a process) and the marker the registry was created with (it carries a
random id). ``s3://reg/team`` behind two endpoints, ``memory://ci`` in two processes, or a
registry wiped and created again under the same URI are different registries here.

Finding the identity costs one small read (the marker) per :class:`RemoteCache`; offline,
the identity last seen at that address is used. Every object enters the cache verified and
is checked again each time it is delivered from it; a damaged cached record, object or
bundle (truncated, replaced by a link or a folder) is dropped and fetched again. With
``offline`` set, anything the cache cannot answer is an :class:`OfflineError` naming what was
needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from modreg._content import FileEntry
from modreg.errors import IntegrityError, OfflineError
from modreg.registry._deliver import deliver
from modreg.registry._keys import MARKER, object_key
from modreg.store import LocalStore, Store
from modreg.store.local import copy_file

__all__ = ["RemoteCache"]

MARKER_LIMIT = 1 << 16
_SEEN = "registries"  # address digest -> the marker last seen there (for offline use)


class RemoteCache:
    """A local store holding verified copies of one remote registry's immutable keys."""

    def __init__(self, root: Path, remote: Store, *, offline: bool) -> None:
        self.local = LocalStore(root)
        self.remote = remote
        self.offline = offline
        self._namespace: str | None = None
        self._known = False
        self._lock = threading.Lock()

    def offline_error(self, needed: str) -> OfflineError:
        return OfflineError(
            f"{needed} needs the network (registry {self.remote.location}) and "
            "MODREG_OFFLINE/--offline is set: pin an exact version that was pulled before, "
            "or go online"
        )

    # -- the registry's identity -------------------------------------------------------------
    def namespace(self) -> str | None:
        """The key prefix of this registry's cached records (None: it has no marker yet)."""
        with self._lock:
            if not self._known:
                self._namespace = self._identify()
                self._known = True
            return self._namespace

    def _identify(self) -> str | None:
        address = self.remote.address
        seen = self.local.root / _SEEN / hashlib.sha256(address.encode()).hexdigest()
        if self.offline:
            try:
                marker = seen.read_bytes()
            except OSError:
                raise self.offline_error("the registry's identity (its marker)") from None
        else:
            found = self.remote.get(MARKER, limit=MARKER_LIMIT)
            if found is None:  # not a registry yet, or one made before markers: cache nothing
                return None
            marker = found
            with contextlib.suppress(OSError):
                _replace(seen, marker)
        identity = hashlib.sha256(address.encode() + b"\0" + marker).hexdigest()[:32]
        return f"{identity}/"

    # -- records and bundles -----------------------------------------------------------------
    def record(self, key: str, *, limit: int, check: Callable[[bytes], object]) -> bytes | None:
        """A record's bytes from the cache, else from the remote (then cached).

        ``check`` raises IntegrityError for bytes that are not the record asked for: a
        damaged cached copy is dropped and fetched again, a damaged remote one is not kept.
        """
        return self._immutable(key, limit, check)

    def bundle(self, key: str, *, limit: int) -> bytes | None:
        """A signature bundle (immutable once stored), from the cache else the remote.

        A cached bundle that is not JSON any more (truncated on disk) is dropped and fetched
        again: kept, it would refuse every trusted pull of the version.
        """
        return self._immutable(key, limit, _json_document)

    def _immutable(
        self, key: str, limit: int, check: Callable[[bytes], object] | None
    ) -> bytes | None:
        namespace = self.namespace()
        if namespace is None:
            return self.remote.get(key, limit=limit)
        local = f"{namespace}{key}"
        try:
            data = self.local.get(local, limit=limit)
            if data is not None and check is not None:
                check(data)
        except IntegrityError:  # truncated, oversized, a link or a folder: drop it, refetch
            self.local.delete(local)
            data = None
        if data is not None:
            return data
        if self.offline:
            raise self.offline_error(f"{key}")
        data = self.remote.get(key, limit=limit)
        if data is not None:
            if check is not None:
                check(data)
            self.local.put_if_absent(local, data)
        return data

    def bundles(self, prefix: str) -> list[str]:
        """The signature keys under ``prefix``: the remote's listing, or offline the cache's."""
        namespace = self.namespace()
        if not self.offline:
            return list(self.remote.list(prefix))
        if namespace is None:
            raise self.offline_error(f"listing {prefix}")
        local = f"{namespace}{prefix}"
        return [k[len(namespace) :] for k in self.local.list(local)]

    # -- objects -----------------------------------------------------------------------------
    def deliver(self, entry: FileEntry, target: Path) -> None:
        """Write ``entry``'s object to ``target``, from the cache (filled first if needed)."""
        key = object_key(entry.sha256)
        try:
            if self.local.head(key) is not None:
                deliver(self.local, entry, target)
                return
        except IntegrityError:  # a damaged cached copy (or not a file): drop it, fetch again
            self.local.delete(key)
        if self.offline:
            raise self.offline_error(f"file {entry.path} (sha256:{entry.sha256[:12]})")
        deliver(self.remote, entry, target)  # every byte checked as it lands
        self._keep(target, entry)

    def _keep(self, delivered: Path, entry: FileEntry) -> None:
        """Put a copy of freshly verified bytes into the cache.

        A copy, not a hard link: a caller that saves the pulled file in place must not change
        the cache's bytes (they would be refetched, and an offline pull would have nothing).
        The bytes were checked against the record as they landed, so they are not hashed
        again on the way in; every later use checks the cached copy anyway.
        """
        staged = self.local.temp_path()
        try:
            copy_file(delivered, staged)  # staged in the cache's temp area: linked, not rehashed
            self.local.put_if_absent(object_key(entry.sha256), staged, sha256=entry.sha256)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)


def _json_document(data: bytes) -> None:
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        raise IntegrityError("not a JSON document") from None


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    staged.write_bytes(data)
    os.replace(staged, path)
