"""A store in a local directory, safe under concurrent writers and ``kill -9``.

Layout::

    ROOT/
      objects/sha256/ab/cdef...      immutable blobs, named by their sha256
      records/<name>/<version>.json  version records (the commit point of a publish)
      records/<name>/<version>.yank  yank markers (append-only)
      index.jsonl                    append-only index of published versions (a cache)
      tmp/                           unique temp files; orphans are removed by gc

A module name ``ns/leaf`` is stored as ``ns+leaf`` (``+`` never occurs in names), so the
records tree has one level. Every write goes to a unique temp file in ``tmp/`` on the same
filesystem, is fsynced, then published with ``os.link`` (exclusive: fails if the target
exists) or ``os.replace``, and the parent directory is fsynced. A crash leaves at most a temp
file, never a partial object or record.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import json
import mmap
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from blake3 import blake3

from modreg._content import FileEntry, hash_file
from modreg.errors import IntegrityError
from modreg.store._base import IndexEntry

__all__ = ["LocalStore"]

CHUNK = 1 << 23
SPAN = 1 << 26  # bytes a pull copies in the kernel before hashing them
_INDEX = "index.jsonl"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(name: str) -> str:
    return name.replace("/", "+")


def _decode(name: str) -> str:
    return name.replace("+", "/")


class LocalStore:
    """A registry store rooted at a local directory (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    # -- paths -------------------------------------------------------------------------------
    def _object_path(self, sha256: str) -> Path:
        return self.root / "objects" / "sha256" / sha256[:2] / sha256[2:]

    def _record_dir(self, name: str) -> Path:
        return self.root / "records" / _encode(name)

    def _tmp(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{os.getpid()}-{uuid.uuid4().hex}.tmp"

    def _publish_file(self, tmp: Path, final: Path, *, exclusive: bool) -> bool:
        """Move a synced temp file into place; False if ``exclusive`` and it already exists."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            if exclusive:
                try:
                    os.link(tmp, final)
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, final)
            _fsync_dir(final.parent)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- objects -----------------------------------------------------------------------------
    def put_object(self, source: Path, sha256: str, size: int) -> None:
        final = self._object_path(sha256)
        if self._intact(sha256):
            return
        tmp = self._tmp()
        _copy_verified(source, tmp, sha256, size, what=str(source))
        # A damaged object already in place is replaced; an intact one is kept.
        if not self._publish_file(tmp, final, exclusive=True) and not self._intact(sha256):
            tmp = self._tmp()
            _copy_verified(source, tmp, sha256, size, what=str(source))
            self._publish_file(tmp, final, exclusive=False)

    def copy_object_to(self, entry: FileEntry, target: Path) -> None:
        source = self._object_path(entry.sha256)
        what = f"object sha256:{entry.sha256[:12]} ({entry.path})"
        if not source.is_file():
            raise IntegrityError(f"object sha256:{entry.sha256} is missing from {self.location}: "
                                 "run 'modreg verify' and re-publish the module")  # fmt: skip
        if entry.blake3 is None:  # a record from before BLAKE3: check the sha256
            _copy_verified(source, target, entry.sha256, entry.size, what=what, durable=False)
        else:
            _deliver_checked(source, target, entry, what=what)

    def read_object(self, sha256: str, size: int) -> bytes:
        path = self._object_path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(
                f"object sha256:{sha256} is missing from {self.location}: run 'modreg verify'"
            ) from None
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(
                f"object sha256:{sha256[:12]} is damaged in {self.location}: run 'modreg verify'"
            )
        return data

    def has_object(self, sha256: str) -> bool:
        return self._object_path(sha256).is_file()

    def remove_object(self, sha256: str, *, min_age: float) -> bool:
        path = self._object_path(sha256)
        try:
            if time.time() - path.stat().st_mtime < min_age:
                return False
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def iter_objects(self) -> Iterator[tuple[str, int]]:
        base = self.root / "objects" / "sha256"
        if not base.is_dir():
            return
        for prefix in sorted(os.scandir(base), key=lambda e: e.name):
            for entry in sorted(os.scandir(prefix.path), key=lambda e: e.name):
                yield prefix.name + entry.name, entry.stat().st_size

    def _intact(self, sha256: str) -> bool:
        found = self.hash_object(sha256)
        return found is not None and found.sha256 == sha256

    def hash_object(self, sha256: str) -> FileEntry | None:
        try:
            return hash_file(self._object_path(sha256))
        except FileNotFoundError:
            return None

    # -- records -----------------------------------------------------------------------------
    def create_record(self, name: str, version: str, data: bytes) -> bytes | None:
        final = self._record_dir(name) / f"{version}.json"
        if final.exists():
            return final.read_bytes()
        tmp = self._tmp()
        _write_synced(tmp, data)
        if self._publish_file(tmp, final, exclusive=True):
            return None
        return final.read_bytes()

    def read_record(self, name: str, version: str) -> bytes | None:
        try:
            return (self._record_dir(name) / f"{version}.json").read_bytes()
        except FileNotFoundError:
            return None

    def versions(self, name: str) -> dict[str, bool]:
        try:
            files = os.listdir(self._record_dir(name))
        except FileNotFoundError:
            return {}
        yanked = {f[: -len(".yank")] for f in files if f.endswith(".yank")}
        return {f[:-5]: f[:-5] in yanked for f in files if f.endswith(".json")}

    def mark_yanked(self, name: str, version: str, reason: str) -> None:
        tmp = self._tmp()
        _write_synced(tmp, json.dumps({"reason": reason}).encode())
        self._publish_file(tmp, self._record_dir(name) / f"{version}.yank", exclusive=True)

    def names(self) -> list[str]:
        try:
            return sorted(_decode(d) for d in os.listdir(self.root / "records"))
        except FileNotFoundError:
            return []

    # -- index -------------------------------------------------------------------------------
    def index(self) -> list[IndexEntry]:
        try:
            lines = (self.root / _INDEX).read_bytes().splitlines()
        except FileNotFoundError:
            return []
        rows: dict[tuple[str, str], dict[str, object]] = {}
        for line in lines:
            try:
                row = json.loads(line)
                key = (row["name"], row["version"])
            except (ValueError, TypeError, KeyError):  # a torn tail line of a crashed writer
                continue
            if row.get("yanked") and key in rows:
                rows[key]["yanked"] = True
            else:
                rows[key] = row
        entries = []
        for row in rows.values():
            with contextlib.suppress(TypeError):
                entries.append(IndexEntry(**row))  # type: ignore[arg-type]
        return entries

    def append_index(self, entry: IndexEntry) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(entry.__dict__, separators=(",", ":")) + "\n").encode()
        # One write() with O_APPEND: concurrent appenders never interleave bytes of a line.
        fd = os.open(self.root / _INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def rebuild_index(self, entries: list[IndexEntry]) -> None:
        tmp = self._tmp()
        text = "".join(json.dumps(e.__dict__, separators=(",", ":")) + "\n" for e in entries)
        _write_synced(tmp, text.encode())
        self._publish_file(tmp, self.root / _INDEX, exclusive=False)

    def clean_temporaries(self) -> int:
        tmp = self.root / "tmp"
        if not tmp.is_dir():
            return 0
        removed = 0
        for entry in os.scandir(tmp):
            pid = entry.name.split("-", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                continue  # a live writer owns it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
        return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_verified(
    source: Path, target: Path, sha256: str, size: int, *, what: str, durable: bool = True
) -> None:
    """Copy ``source`` to a new file ``target``, hashing exactly the bytes written.

    One pass over the data, double-buffered: while a worker thread writes chunk *i*, this
    thread reads chunk *i+1* and hashes it (both ``os.write`` and ``hashlib`` release the
    GIL on large buffers), so checking costs little more than the copy itself. ``durable``
    fsyncs the copy (store writes; a pulled copy can always be pulled again). Because the
    digest covers the written bytes, a source changed mid-copy can never be stored or
    delivered under a wrong digest. A mismatch removes ``target`` and raises.
    """
    try:
        actual, written = _copy_hashing(source, target, durable=durable)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise
    if actual != sha256 or written != size:
        os.unlink(target)
        raise IntegrityError(
            f"{what} does not match its record (expected sha256:{sha256[:12]}, {size} bytes; "
            f"found sha256:{actual[:12]}, {written} bytes): run 'modreg verify'"
        )


def _copy_hashing(source: Path, target: Path, *, durable: bool) -> tuple[str, int]:
    digest = hashlib.sha256()
    written = 0
    buffers = [bytearray(CHUNK), bytearray(CHUNK)]
    with (
        open(source, "rb", buffering=0) as reader,
        open(target, "xb", buffering=0) as writer,
        concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool,
    ):
        pending: concurrent.futures.Future[None] | None = None
        turn = 0
        while count := reader.readinto(buffers[turn]):
            view = memoryview(buffers[turn])[:count]
            digest.update(view)
            if pending is not None:
                pending.result()
            pending = pool.submit(_write_all, writer.fileno(), view)
            written += count
            turn = 1 - turn
        if pending is not None:
            pending.result()
        if durable:
            os.fsync(writer.fileno())
    return digest.hexdigest(), written


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _deliver_checked(source: Path, target: Path, entry: FileEntry, *, what: str) -> None:
    """Copy ``source`` to a new file ``target`` and check the BLAKE3 of the bytes delivered.

    A worker thread copies span after span inside the kernel (``copy_file_range``: the
    bytes never cross into Python), while this thread hashes each finished span of the
    *target* through a read-only mapping. Copy and check overlap on two cores, and what is
    checked is exactly what the caller gets: a source changed or damaged mid-copy cannot be
    delivered. A mismatch in size or hash removes ``target`` and raises.
    """
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        actual = _copy_and_hash(source, fd, entry.size)
    except BaseException:
        os.close(fd)
        os.unlink(target)
        raise
    os.close(fd)
    if actual != entry.blake3:
        os.unlink(target)
        raise IntegrityError(
            f"{what} does not match its record (expected blake3:{str(entry.blake3)[:12]}, "
            f"found blake3:{actual[:12]}): run 'modreg verify'"
        )


def _copy_and_hash(source: Path, fd: int, size: int) -> str:
    hasher = blake3()
    with open(source, "rb", buffering=0) as reader:
        found = os.fstat(reader.fileno()).st_size
        if found != size:
            raise IntegrityError(
                f"object {source.name[:10]}... is {found} bytes, its record says {size}: "
                "run 'modreg verify'"
            )
        if size == 0:
            return hasher.hexdigest()
        os.ftruncate(fd, size)
        spans = [(start, min(SPAN, size - start)) for start in range(0, size, SPAN)]
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        try:
            copies = [pool.submit(_copy_span, reader.fileno(), fd, *span) for span in spans]
            with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    for (start, length), copy in zip(spans, copies, strict=True):
                        copy.result()
                        hasher.update(view[start : start + length])
                finally:
                    view.release()
        finally:
            pool.shutdown(cancel_futures=True)
    return hasher.hexdigest()


def _copy_span(source: int, target: int, start: int, length: int) -> None:
    """Copy ``length`` bytes at offset ``start`` of ``source`` to the same offset of ``target``."""
    position, end = start, start + length
    while position < end:
        count = _copy_some(source, target, position, end - position)
        if count == 0:
            raise IntegrityError(f"object ended {end - position} bytes early: run 'modreg verify'")
        position += count


def _copy_some(source: int, target: int, position: int, length: int) -> int:
    if _KERNEL_COPY:
        try:
            return os.copy_file_range(source, target, length, position, position)
        except OSError as exc:  # this pair of files cannot be copied in the kernel
            if exc.errno not in _NO_KERNEL_COPY:
                raise
    return os.pwrite(target, os.pread(source, min(CHUNK, length), position), position)


_KERNEL_COPY = hasattr(os, "copy_file_range")  # Linux
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})
