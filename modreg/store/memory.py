"""A store in memory: the reference implementation of the protocol, and a fast test double.

It keeps the same promises as the other backends (exclusive creates under threads, checksums
on write), so the contract suite holds it to them like any other. ``memory://NAME`` opens a
store shared by every registry of this process that names it. It counts as ``remote`` (the
registry puts its cache in front, as for S3), so it is also the twin that remote behaviour
is tested on without a server.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from modreg.errors import IntegrityError
from modreg.store._base import AbstractStore, KeyInfo

__all__ = ["MemoryStore"]

_SHARED: dict[str, MemoryStore] = {}
_SHARED_LOCK = threading.Lock()


class MemoryStore(AbstractStore):
    """Keys in a dict behind a lock; ``list`` walks a sorted key list."""

    def __init__(self, name: str = "") -> None:
        self.location = f"memory://{name}"
        self._values: dict[str, tuple[bytes, float]] = {}
        self._sorted: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, name: str) -> MemoryStore:
        """The process-wide store called ``name`` (created on first use)."""
        with _SHARED_LOCK:
            return _SHARED.setdefault(name, cls(name))

    def __repr__(self) -> str:
        return f"MemoryStore({self.location!r})"

    @property
    def address(self) -> str:
        """``memory://ci`` of another process (or another instance) holds other keys."""
        return f"{self.location} pid {os.getpid()} store {id(self):x}"

    def put_if_absent(self, key: str, source: bytes | Path, *, sha256: str | None = None) -> bool:
        data = source.read_bytes() if isinstance(source, Path) else bytes(source)
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"bytes for {key} do not hash to sha256:{sha256[:12]}")
        with self._lock:
            if key in self._values:
                return False
            self._values[key] = (data, time.time())
            bisect.insort(self._sorted, key)
            return True

    def get(
        self, key: str, *, start: int = 0, length: int | None = None, limit: int | None = None
    ) -> bytes | None:
        with self._lock:
            found = self._values.get(key)
        if found is None:
            return None
        data = found[0]
        if limit is not None and len(data) > limit:
            raise IntegrityError(f"{key} is {len(data)} bytes, over the limit of {limit}")
        end = len(data) if length is None else start + length
        return data[start:end]

    def head(self, key: str) -> KeyInfo | None:
        with self._lock:
            found = self._values.get(key)
        return None if found is None else KeyInfo(len(found[0]), found[1])

    def list(self, prefix: str, *, start_after: str = "") -> Iterator[str]:
        with self._lock:
            keys = list(self._sorted)
        first = bisect.bisect_left(keys, prefix)
        if start_after:
            first = max(first, bisect.bisect_right(keys, start_after))
        for key in keys[first:]:
            if not key.startswith(prefix):
                return
            yield key

    def delete(self, key: str) -> None:
        with self._lock:
            if self._values.pop(key, None) is not None:
                self._sorted.remove(key)

    # -- for tests that play the attacker ----------------------------------------------------
    def overwrite(self, key: str, data: bytes) -> None:
        """Replace a value behind the protocol's back (damage, as a failing disk would)."""
        with self._lock:
            if key not in self._values:
                bisect.insort(self._sorted, key)
            self._values[key] = (data, time.time())

    def age(self, key: str, seconds: float) -> None:
        """Make ``key`` look ``seconds`` older (for gc tests)."""
        with self._lock:
            data, written = self._values[key]
            self._values[key] = (data, written - seconds)
