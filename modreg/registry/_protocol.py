"""The registry's one write protocol: every writer (publish, copy, repair, yank, gc) uses it.

The orders that keep a registry whole under any interleaving and any crash live here, once:

- a writer names the objects it relies on in an in-flight marker (:func:`inflight`), then
  waits while a gc holds its lock, so gc never deletes an object about to be referenced;
- objects are created content-addressed and checksummed (:func:`put_object`), a damaged
  stored copy replaced;
- the version record is created exclusively: the commit point (:func:`commit`); of racing
  writers exactly one wins, the others are handed the winner's bytes;
- what follows a commit (index entry, reverse-dependency keys) is idempotent and finished by
  any later writer of the same version (:func:`complete`);
- gc takes ``locks/gc.json`` (:func:`gc_lock`), and deletes only well before the lock would
  look stale to a publish.

Functions take the :class:`Store` they write to: a copy writes to its target through the
same calls a publish makes, never through another registry's private methods.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from packaging.version import InvalidVersion, Version

from modreg._content import FileEntry
from modreg.errors import IntegrityError, StoreError, VersionExists
from modreg.registry import _index
from modreg.registry._deliver import hash_key
from modreg.registry._index import IndexEntry
from modreg.registry._keys import (
    GC_LOCK,
    INFLIGHT,
    dependent_key,
    object_key,
    record_key,
)
from modreg.registry._records import RECORD_LIMIT, VersionRecord, parse_record
from modreg.registry._yanks import YankState, read_state
from modreg.store import Store

__all__ = [
    "GC_LOCK_STALE",
    "GC_WAIT",
    "ORPHAN_AGE_SECONDS",
    "after_commit",
    "commit",
    "complete",
    "gc_lock",
    "inflight",
    "put_object",
    "receive",
    "version_of",
    "wait_for_gc",
    "yank_entry",
]

ORPHAN_AGE_SECONDS = 3600.0  # gc keeps unreferenced objects younger than this
GC_LOCK_STALE = 600.0  # a gc lock older than this was left by a gc that died
GC_WAIT = 120.0  # how long a writer waits for a running gc before giving up


@functools.lru_cache(maxsize=65536)
def version_of(text: str) -> Version | None:
    """``text`` as a version, or None when it is not one (a stray key's name)."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


# -- gc exclusion ------------------------------------------------------------------------------
def _lock_info(store: Store) -> float | None:
    """When the gc lock was written, or None if there is none."""
    try:
        held = store.head(GC_LOCK)
    except IntegrityError as exc:  # a FIFO or a folder: nothing a gc wrote
        raise StoreError(
            f"{GC_LOCK} in {store.location} is not a regular file, so gc cannot take its lock "
            "(and a publish cannot tell whether one runs): remove it by hand"
        ) from exc
    return None if held is None else held.modified


def wait_for_gc(store: Store) -> None:
    """Wait while a live gc holds its lock (one older than :data:`GC_LOCK_STALE` is dead)."""
    deadline = time.monotonic() + GC_WAIT
    while (written := _lock_info(store)) is not None:
        age = time.time() - written
        if age > GC_LOCK_STALE:
            return  # left by a gc that died; gc itself stops deleting well before this
        if time.monotonic() > deadline:
            raise StoreError(
                f"a gc has been running on {store.location} for {age:.0f} s: wait for it "
                f"to finish, or delete {GC_LOCK} if it crashed"
            )
        time.sleep(0.2)


@contextlib.contextmanager
def inflight(store: Store, objects: Iterable[str]) -> Iterator[None]:
    """Protect ``objects`` (sha256s) from gc until the block ends (the record is in by then)."""
    key = f"{INFLIGHT}{uuid.uuid4().hex}.json"
    body = json.dumps({"created": time.time(), "pid": os.getpid(), "objects": list(objects)})
    store.put_if_absent(key, body.encode())
    try:
        wait_for_gc(store)
        yield
    finally:
        with contextlib.suppress(OSError):
            store.delete(key)


@contextlib.contextmanager
def gc_lock(store: Store) -> Iterator[float]:
    """Hold ``locks/gc.json`` for the block; yields the monotonic time it was taken.

    Raises:
        StoreError: another live gc holds it.
    """
    body = json.dumps({"created": time.time()}).encode()
    for _ in range(2):
        if store.put_if_absent(GC_LOCK, body):
            break
        written = _lock_info(store)
        if written is not None and time.time() - written > GC_LOCK_STALE:
            store.delete(GC_LOCK)  # left by a gc that died
            continue
        raise StoreError(
            f"another gc is running on {store.location}: wait for it to finish, or delete "
            f"{GC_LOCK} if it crashed"
        )
    else:
        raise StoreError(f"could not take {GC_LOCK} on {store.location}: run gc again")
    try:
        yield time.monotonic()
    finally:
        store.delete(GC_LOCK)


# -- objects and records -----------------------------------------------------------------------
def put_object(store: Store, source: Path, entry: FileEntry) -> bool:
    """Create ``entry``'s object from the verified file ``source``; replace a damaged copy.

    A present object of the wrong size is damaged; on a store whose reads are cheap (not
    remote) it is hashed too. Only call inside :func:`inflight` for ``entry``.

    Returns:
        True if bytes were written (a new object, or a repaired one).
    """
    key = object_key(entry.sha256)
    if store.put_if_absent(key, source, sha256=entry.sha256):
        return True
    try:
        found = store.head(key)
        intact = found is not None and found.size == entry.size
        if intact and not store.remote:
            hashed = hash_key(store, key)
            intact = hashed is not None and hashed.sha256 == entry.sha256
    except IntegrityError:  # there, but not a file: replace it
        intact = False
    if intact:
        return False
    store.delete(key)
    store.put_if_absent(key, source, sha256=entry.sha256)
    return True


def commit(store: Store, record: VersionRecord, data: bytes | None = None) -> bytes | None:
    """Create the version record: the commit point. None if created, else the bytes there.

    ``data`` is the record's stored form (a copy keeps the source's bytes exactly).
    """
    key = record_key(record.name, record.version)
    if store.put_if_absent(key, data if data is not None else record.to_json()):
        return None
    return store.get(key, limit=RECORD_LIMIT) or b""


def _entry(record: VersionRecord) -> IndexEntry:
    return IndexEntry(record.name, record.version, record.digest, record.kind, record.summary)


def yank_entry(record: VersionRecord, state: YankState) -> IndexEntry:
    """The index entry of one yank step (the index folds the highest step)."""
    name, version, digest, kind = record.name, record.version, record.digest, record.kind
    return IndexEntry(
        name, version, digest, kind, record.summary, state.yanked, state.reason, state.step
    )


def _dependency_keys(store: Store, record: VersionRecord, requires: Iterable[str]) -> None:
    """Reverse-dependency keys: derived data (verify rebuilds them), so never fatal here."""
    for dependency in sorted(requires):
        with contextlib.suppress(StoreError, ValueError):  # a stray file where a folder goes
            store.put_if_absent(dependent_key(dependency, record.name, record.version), b"")


def after_commit(store: Store, record: VersionRecord, requires: Iterable[str]) -> None:
    """What the writer that committed ``record`` writes next: its index entry, its dependents."""
    _index.append_entry(store, _entry(record))
    _dependency_keys(store, record, requires)


def complete(store: Store, record: VersionRecord, requires: Iterable[str]) -> None:
    """Finish a committed version whatever its writer got to: index entries, dependency keys.

    A publish that failed after its commit point (a full disk, a dropped connection) left
    the version resolvable but maybe unlisted; any later writer of the same bytes ends here.
    The index is read once and written only where it lacks the version (or its newest
    yank step).
    """
    listed = {
        e.yank_step
        for e in _index.read_index(store)
        if (e.name, e.version) == (record.name, record.version)
    }
    if not listed:
        _index.append_entry(store, _entry(record))
    _dependency_keys(store, record, requires)
    state = read_state(store, record.name, record.version)
    if state is not None and state.step not in listed:
        _index.append_entry(store, yank_entry(record, state))


def receive(
    store: Store,
    record: VersionRecord,
    data: bytes,
    requires: Iterable[str],
    deliver: Callable[[FileEntry, Path], None],
) -> bool:
    """Write another registry's version into ``store``, byte for byte (``modreg copy``).

    ``deliver`` writes one verified file of the source. Objects go first and the record
    last; a version already there with the same digest is completed, never refused.

    Returns:
        True if the record was created here, False if it was there already.

    Raises:
        VersionExists: ``store`` holds other bytes at that version.
    """
    there = store.get(record_key(record.name, record.version), limit=RECORD_LIMIT)
    if there is None:
        with (
            inflight(store, [e.sha256 for e in record.files]),
            tempfile.TemporaryDirectory(prefix="modreg-copy-") as tmp,
        ):
            for entry in record.files:
                if store.head(object_key(entry.sha256)) is None:
                    staged = Path(tmp) / entry.sha256
                    deliver(entry, staged)
                    put_object(store, staged, entry)
                    staged.unlink()
            there = commit(store, record, data)
            if there is None:
                after_commit(store, record, requires)
                return True
    theirs = parse_record(there, record.ref)
    if theirs.digest != record.digest:
        raise VersionExists(
            f"{record.ref} is already in {store.location} with different content "
            f"({theirs.digest[:19]}..., the source has {record.digest[:19]}...): versions "
            "are immutable; copy into another registry"
        )
    complete(store, theirs, requires)
    return False
