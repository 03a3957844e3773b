"""The Store protocol: where a registry's bytes live.

A store knows nothing of manifests or versions' meaning; it keeps content-addressed objects
and small version records, and guarantees the registry's atomicity rules:

- ``put_object`` is idempotent and never exposes a partial object;
- ``create_record`` is an exclusive create: of many concurrent writers of one key, exactly
  one wins and the others are told what is there;
- yank markers and the index are append-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from modreg._content import FileEntry

__all__ = ["IndexEntry", "ObjectProblem", "Store"]


@dataclass(frozen=True)
class IndexEntry:
    """One line of the registry index: a published or yanked version."""

    name: str
    version: str
    digest: str
    kind: str
    summary: str
    yanked: bool = False


@dataclass(frozen=True)
class ObjectProblem:
    """A stored object that is damaged or missing, found by ``verify``."""

    key: str
    problem: str


@runtime_checkable
class Store(Protocol):
    """Content-addressed objects plus exclusive version records."""

    location: str

    def put_object(self, source: Path, sha256: str, size: int) -> None:
        """Store the bytes of ``source`` under ``sha256`` (verified while copying)."""

    def copy_object_to(self, entry: FileEntry, target: Path) -> None:
        """Write the object holding ``entry``'s bytes to ``target``, checking hash and size."""

    def read_object(self, sha256: str, size: int) -> bytes:
        """Return a small object's bytes, verified."""

    def has_object(self, sha256: str) -> bool:
        """Whether an object is present (not verified)."""

    def create_record(self, name: str, version: str, data: bytes) -> bytes | None:
        """Exclusively create a version record; return the existing bytes if one exists."""

    def read_record(self, name: str, version: str) -> bytes | None:
        """The version record, or None."""

    def versions(self, name: str) -> dict[str, bool]:
        """Every recorded version of ``name`` mapped to whether it is yanked."""

    def mark_yanked(self, name: str, version: str, reason: str) -> None:
        """Record that a version is yanked (it stays resolvable by exact pin)."""

    def names(self) -> list[str]:
        """Every module name with at least one record."""

    def index(self) -> list[IndexEntry]:
        """The index: one entry per published version, latest yank state folded in."""

    def append_index(self, entry: IndexEntry) -> None:
        """Append an entry to the index (a cache of the records; rebuildable)."""

    def rebuild_index(self, entries: list[IndexEntry]) -> None:
        """Replace the index wholesale (after verify)."""

    def remove_object(self, sha256: str, *, min_age: float) -> bool:
        """Delete an object last written over ``min_age`` seconds ago; True if removed."""

    def iter_objects(self) -> Iterator[tuple[str, int]]:
        """Every stored object's digest and size on disk."""

    def hash_object(self, sha256: str) -> FileEntry | None:
        """Both hashes and the size of a stored object, read in full; None if it is missing."""

    def clean_temporaries(self) -> int:
        """Remove temp files left by crashed writers; return how many."""
