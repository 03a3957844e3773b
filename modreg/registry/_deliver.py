"""Integrity above the store seam: every byte delivered or re-hashed is checked here.

Backends only move bytes (``Store.read_into``, ``Store.iter_bytes``); this module checks them,
so every backend gets the same guarantees without re-implementing them:

- :func:`deliver` writes an object into a new file and hashes the *delivered* bytes through a
  read-only mapping of the target, span by span as the backend completes them, so copying
  and checking overlap, and what is checked is exactly what the caller gets. A mismatch in
  size or hash removes the file. BLAKE3 is checked where the record has it (about four times
  faster than sha256 per core); records from before BLAKE3 are checked by sha256.
- :func:`hash_key` re-hashes a stored value by both hashes (``modreg verify``).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
from pathlib import Path

from blake3 import blake3

from modreg._content import FileEntry
from modreg.errors import IntegrityError
from modreg.registry._keys import object_key
from modreg.store._base import Store

__all__ = ["deliver", "hash_key"]


def deliver(store: Store, entry: FileEntry, target: Path) -> None:
    """Write the object holding ``entry``'s bytes to the new file ``target``, checked.

    Raises:
        IntegrityError: the object is missing, or its size or hash differs from ``entry``
            (``target`` is removed).
    """
    key = object_key(entry.sha256)
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        actual = _fill_and_hash(store, key, fd, entry)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise
    os.close(fd)
    expected = entry.blake3 or entry.sha256
    if actual != expected:
        os.unlink(target)
        algorithm = "blake3" if entry.blake3 else "sha256"
        raise IntegrityError(
            f"object sha256:{entry.sha256[:12]} ({entry.path}) in {store.location} does not "
            f"match its record (expected {algorithm}:{expected[:12]}, found "
            f"{algorithm}:{actual[:12]}): run 'modreg verify'"
        )


def _fill_and_hash(store: Store, key: str, fd: int, entry: FileEntry) -> str:
    hasher = blake3() if entry.blake3 else hashlib.sha256()
    size = entry.size
    if size == 0:
        if store.head(key) is None:
            raise _missing(store, entry)
        for _ in store.read_into(key, fd, 0):
            pass
        return hasher.hexdigest()
    os.ftruncate(fd, size)
    hashed = 0
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            for done in store.read_into(key, fd, size):
                hasher.update(view[hashed:done])
                hashed = done
        finally:
            view.release()
    if hashed != size:
        raise IntegrityError(
            f"object sha256:{entry.sha256[:12]} in {store.location} delivered {hashed} of "
            f"{size} bytes: run 'modreg verify'"
        )
    return hasher.hexdigest()


def _missing(store: Store, entry: FileEntry) -> IntegrityError:
    return IntegrityError(
        f"object sha256:{entry.sha256} ({entry.path}) is missing from {store.location}: "
        "run 'modreg verify' and re-publish the module"
    )


def hash_key(store: Store, key: str) -> FileEntry | None:
    """Both hashes and the size of a stored value, read in full; None if it is absent."""
    if store.head(key) is None:
        return None
    sha, fast, size = hashlib.sha256(), blake3(), 0
    for chunk in store.iter_bytes(key):
        sha.update(chunk)
        fast.update(chunk)
        size += len(chunk)
    return FileEntry(key.rsplit("/", 1)[-1], sha.hexdigest(), size, fast.hexdigest())
