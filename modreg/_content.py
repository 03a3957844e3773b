"""What a module's content is: its fixed file names, its files' hashes, and its digest.

Every file of a module is recorded with two hashes of the same bytes:

- ``sha256`` names the stored object (content addressing: what ``sha256sum`` prints);
- ``blake3`` is what reads check. BLAKE3 hashes ~4 times faster than sha256 on one core,
  so a pull can check every byte it delivers at close to the speed of a plain copy
  (``benchmarks/bench_registry.py``), where a sha256 check alone would take three times the
  copy's time.

The module digest covers both (and each file's size), so checking either hash of a file
against a record whose digest checks out proves the file's content. Records written before
BLAKE3 was added carry only ``sha256``; their files are checked with it.

This module is on the path of every ``modreg pull``: it imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

__all__ = [
    "LOCK_FILE",
    "MANIFEST_FILE",
    "FileEntry",
    "bytes_match",
    "file_matches",
    "hash_file",
    "is_hex_digest",
    "tree_digest",
]

MANIFEST_FILE = "modreg.yaml"
LOCK_FILE = "modreg.lock"
CHUNK = 1 << 22


@dataclass(frozen=True)
class FileEntry:
    """One file of a module: its path inside the module, hashes and size."""

    path: str
    sha256: str
    size: int
    blake3: str | None = None

    def to_json(self) -> dict[str, str | int]:
        data: dict[str, str | int] = {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.blake3 is not None:
            data["blake3"] = self.blake3
        return data


def is_hex_digest(text: object) -> bool:
    """Whether ``text`` is a 64-digit lowercase hex digest (sha256 or BLAKE3)."""
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def hash_file(path: Path) -> FileEntry:
    """sha256, BLAKE3 and size of a file, in one read (its ``path`` field is the file name)."""
    sha = hashlib.sha256()
    fast = blake3()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while count := handle.readinto(buffer):
            sha.update(view[:count])
            fast.update(view[:count])
            size += count
    return FileEntry(path.name, sha.hexdigest(), size, fast.hexdigest())


def file_matches(path: Path, entry: FileEntry) -> bool:
    """Whether the file at ``path`` holds exactly the bytes ``entry`` records."""
    try:
        if path.stat().st_size != entry.size:
            return False
    except FileNotFoundError:
        return False
    if entry.blake3 is not None:
        hasher = blake3()
        hasher.update_mmap(path)
        return hasher.hexdigest() == entry.blake3
    return hash_file(path).sha256 == entry.sha256


def bytes_match(data: bytes, entry: FileEntry) -> bool:
    """Whether ``data`` are exactly the bytes ``entry`` records (BLAKE3, else sha256)."""
    if len(data) != entry.size:
        return False
    if entry.blake3 is not None:
        return blake3(data).hexdigest() == entry.blake3
    return hashlib.sha256(data).hexdigest() == entry.sha256


def tree_digest(entries: Iterable[FileEntry]) -> str:
    """The module digest: sha256 of the canonical JSON list of its files (sorted by path)."""
    canonical = json.dumps(
        [e.to_json() for e in sorted(entries, key=lambda e: e.path)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
