"""The Store protocol: the few things an object store can do, and nothing more.

A store keeps opaque bytes under ``/``-separated keys. It knows nothing of modules, records,
versions or hashes' meaning; the registry builds every guarantee on these primitives:

- ``put_if_absent`` is the only write: an exclusive create. Of many concurrent writers of one
  key exactly one wins, a loser learns the key exists, and nobody ever sees a partial value
  (local: temp file + ``link``; S3: ``PutObject`` with ``If-None-Match: *``). Given a
  ``sha256``, the store refuses bytes that do not hash to it (local: while copying; S3: the
  server checks ``x-amz-checksum-sha256``).
- ``get`` (ranged, optionally capped), ``head``, ``list`` (by prefix, sorted, resumable with
  ``start_after``) and ``delete`` (for ``gc`` only).
- ``read_into`` and ``iter_bytes`` are ranged reads shaped for speed; :class:`AbstractStore`
  derives both from ``get``, and a backend overrides them when it can do better (the local
  store copies inside the kernel, S3 fetches ranges in parallel).

Integrity lives above this seam (``modreg/store/_deliver.py``, ``modreg/_maintenance.py``): a
backend never has to hash what it delivers, and every backend gets the same checks.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["AbstractStore", "KeyInfo", "Store", "pwrite_all"]

READ_CHUNK = 1 << 23  # 8 MiB: the span of one ranged read in the default implementations


@dataclass(frozen=True)
class KeyInfo:
    """What ``head`` tells of a key: its size in bytes and when it was written (epoch s)."""

    size: int
    modified: float


@runtime_checkable
class Store(Protocol):
    """Exclusive-create key/value storage: the seam every registry backend implements."""

    location: str
    remote: bool  # reads cost a round trip: the registry caches and parallelises them

    def scratch_dir(self) -> Path | None:
        """A fresh private folder on the store's own filesystem, for staging a publish
        (files staged there are linked into place, not copied); None if it has none."""

    def contains(self, path: Path) -> bool:
        """Whether the local ``path`` lies inside the store (a pull must not write there)."""

    @property
    def address(self) -> str:
        """Where the keys physically are (a path; an endpoint, bucket and prefix; a process).

        Two stores with one ``location`` text can be two places (``s3://reg/team`` behind two
        ``AWS_ENDPOINT_URL``s, ``memory://ci`` in two processes); caches key by this.
        """

    def put_if_absent(self, key: str, source: bytes | Path, *, sha256: str | None = None) -> bool:
        """Create ``key`` with the bytes of ``source``; False (nothing written) if it exists.

        Raises:
            IntegrityError: ``sha256`` was given and the bytes do not hash to it.
            StoreError: the backend failed (unreachable, refused, out of space).
        """

    def get(
        self, key: str, *, start: int = 0, length: int | None = None, limit: int | None = None
    ) -> bytes | None:
        """The bytes of ``key`` (``length`` of them from ``start``), or None if it is absent.

        Raises:
            IntegrityError: the value is larger than ``limit`` bytes (nothing is read).
        """

    def head(self, key: str) -> KeyInfo | None:
        """Size and write time of ``key``, or None if it is absent."""

    def list(self, prefix: str, *, start_after: str = "") -> Iterator[str]:
        """Every key that starts with ``prefix`` and sorts after ``start_after``, in order."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine)."""

    def read_into(self, key: str, fd: int, size: int) -> Iterator[int]:
        """Write the ``size`` bytes of ``key`` into ``fd`` at their offsets.

        Yields the length of the prefix of ``fd`` that is complete, growing to ``size``, so a
        caller can hash the delivered bytes while the rest is still arriving.
        """

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        """The bytes of ``key`` in order, in chunks (for hashing without a copy)."""

    def clean_temporaries(self, *, min_age: float) -> tuple[int, builtins.list[str]]:
        """Remove leftovers of crashed writers older than ``min_age`` seconds.

        Returns:
            (how many were removed, descriptions of stray entries that were left alone).
        """


class AbstractStore:
    """Default ranged reads in terms of ``get``; backends override them to go faster."""

    location: str
    remote: bool = True

    @property
    def address(self) -> str:
        return self.location

    def scratch_dir(self) -> Path | None:
        return None

    def contains(self, path: Path) -> bool:
        return False

    def get(
        self, key: str, *, start: int = 0, length: int | None = None, limit: int | None = None
    ) -> bytes | None:
        raise NotImplementedError

    def read_into(self, key: str, fd: int, size: int) -> Iterator[int]:
        done = 0
        while done < size:
            chunk = self.get(key, start=done, length=min(READ_CHUNK, size - done))
            if chunk is None:
                from modreg.errors import IntegrityError

                raise IntegrityError(f"{key} is missing from {self.location}: run 'modreg verify'")
            if not chunk:
                from modreg.errors import IntegrityError

                raise IntegrityError(
                    f"{key} in {self.location} ended after {done} of {size} bytes: "
                    "run 'modreg verify'"
                )
            pwrite_all(fd, chunk, done)
            done += len(chunk)
            yield done
        if size == 0:
            yield 0

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        start = 0
        while True:
            chunk = self.get(key, start=start, length=READ_CHUNK)
            if not chunk:
                return
            yield chunk
            start += len(chunk)
            if len(chunk) < READ_CHUNK:
                return

    def clean_temporaries(self, *, min_age: float) -> tuple[int, builtins.list[str]]:
        return 0, []


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
