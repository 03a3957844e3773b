"""A store in a local directory, safe under concurrent writers and ``kill -9``.

Each key is a file under the root (``objects/sha256/ab/cdef...`` is
``ROOT/objects/sha256/ab/cdef...``); ``ROOT/tmp/`` holds the temp files and staging folders of
writers in flight and is never listed as keys. Every write goes to a unique temp file in
``tmp/`` on the same filesystem, is fsynced, then published with ``os.link`` (exclusive: fails
if the target exists), and the parent directory is fsynced. A crash leaves at most a temp
file, never a partial value. Reads open regular files only: a FIFO, a device or a symlink
where a key should be is reported, never read (it could block forever or read ``/dev/zero``).
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from modreg._process import alive
from modreg.errors import IntegrityError, StoreError
from modreg.store._base import KeyInfo, pwrite_all

__all__ = ["LocalStore"]

CHUNK = 1 << 23
SPAN = 1 << 26  # bytes a delivery copies in the kernel before the caller hashes them
_TMP = "tmp"
# What modreg itself puts in tmp/: ``<pid>-<32 hex><suffix>``, a file or a staging folder.
# Only entries of exactly these names and kinds are ever removed from there.
_TEMP_KINDS = {".tmp": stat.S_ISREG, ".stage": stat.S_ISDIR}
_TEMP_NAME = re.compile(r"([0-9]+)-[0-9a-f]{32}(\.[a-z]+)")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """A registry store rooted at a local directory (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.location = str(self.root)
        self.remote = False

    def __repr__(self) -> str:
        return f"LocalStore({self.location!r})"

    # -- paths -------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in {"", ".", ".."} for p in parts):
            raise ValueError(f"invalid store key {key!r}")
        if parts[0] == _TMP:
            raise ValueError(f"store key {key!r} is inside the temp area")
        return self.root.joinpath(*parts)

    @property
    def address(self) -> str:
        return str(self.root.resolve())

    def scratch_dir(self) -> Path:
        """A fresh folder in ``ROOT/tmp/``: staged files link into place without a copy."""
        path = self.temp_path(".stage")
        path.mkdir()
        return path

    def contains(self, path: Path) -> bool:
        """Whether ``path`` lies inside this store's directory."""
        try:
            return path.resolve().is_relative_to(self.root.resolve())
        except OSError:
            return False

    def temp_path(self, suffix: str = ".tmp") -> Path:
        """A fresh unique path in ``ROOT/tmp/`` (same filesystem as the keys)."""
        if suffix not in _TEMP_KINDS:  # gc removes only the names in that table
            raise ValueError(f"temp suffix {suffix!r} is not one of {sorted(_TEMP_KINDS)}")
        tmp = self.root / _TMP
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"

    def _is_staged(self, path: Path) -> bool:
        return path.parent.parent == self.root / _TMP or path.parent == self.root / _TMP

    # -- writes ------------------------------------------------------------------------------
    def put_if_absent(self, key: str, source: bytes | Path, *, sha256: str | None = None) -> bool:
        final = self._path(key)
        if os.path.lexists(final):
            return False
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, Path) and sha256 is not None and self._is_staged(source):
                # A file the registry staged (and hashed) in our temp area: link it as is.
                return _link_exclusive(source, final)
            tmp = self.temp_path()
            try:
                if isinstance(source, Path):
                    _copy_hashing(source, tmp, sha256)
                else:
                    _write_synced(tmp, source, sha256)
                return _link_exclusive(tmp, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        except OSError as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise StoreError(_os_message(exc, self.location)) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir() and not path.is_symlink():  # damage where a file belongs (repair)
            shutil.rmtree(path, ignore_errors=True)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    # -- reads -------------------------------------------------------------------------------
    def _open(self, key: str) -> int | None:
        """A read-only descriptor of the regular file at ``key``; None if it is absent."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise IntegrityError(f"{key} in {self.location} is a symlink, not a file") from None
            if exc.errno in (errno.ENXIO, errno.ENODEV):  # a socket, a device without a driver
                raise IntegrityError(f"{key} in {self.location} is not a regular file") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise IntegrityError(f"{key} in {self.location} is not a regular file")
        return fd

    def get(
        self, key: str, *, start: int = 0, length: int | None = None, limit: int | None = None
    ) -> bytes | None:
        fd = self._open(key)
        if fd is None:
            return None
        try:
            size = os.fstat(fd).st_size
            if limit is not None and size > limit:
                raise IntegrityError(
                    f"{key} in {self.location} is {size} bytes, over the limit of {limit}"
                )
            want = size - start if length is None else min(length, size - start)
            chunks, done = [], 0
            while done < want:
                chunk = os.pread(fd, want - done, start + done)
                if not chunk:
                    break
                chunks.append(chunk)
                done += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def head(self, key: str) -> KeyInfo | None:
        try:
            info = os.lstat(self._path(key))
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            raise IntegrityError(f"{key} in {self.location} is not a regular file")
        return KeyInfo(info.st_size, info.st_mtime)

    def list(self, prefix: str, *, start_after: str = "") -> Iterator[str]:
        folder, _, _ = prefix.rpartition("/")
        base = self.root / folder if folder else self.root
        if not base.is_dir() or base.is_symlink():
            return
        for key in _walk(base, folder, skip_top=_TMP if not folder else None):
            if key.startswith(prefix) and key > start_after:
                yield key

    def read_into(self, key: str, fd: int, size: int) -> Iterator[int]:
        """Copy span after span inside the kernel (``copy_file_range``) in a worker thread.

        The bytes never cross into Python; the caller hashes each finished span of ``fd``
        while the next one is copied, so copy and check overlap on two cores.
        """
        source = self._open(key)
        if source is None:
            raise IntegrityError(f"{key} is missing from {self.location}: run 'modreg verify'")
        try:
            found = os.fstat(source).st_size
            if found != size:
                raise IntegrityError(
                    f"{key} in {self.location} is {found} bytes, its record says {size}: "
                    "run 'modreg verify'"
                )
            if size == 0:
                yield 0
                return
            spans = [(start, min(SPAN, size - start)) for start in range(0, size, SPAN)]
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            try:
                copies = [pool.submit(_copy_span, source, fd, *span) for span in spans]
                for (start, length), copy in zip(spans, copies, strict=True):
                    copy.result()
                    yield start + length
            finally:
                pool.shutdown(cancel_futures=True)
        finally:
            os.close(source)

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        fd = self._open(key)
        if fd is None:
            return
        try:
            while chunk := os.read(fd, CHUNK):
                yield chunk
        finally:
            os.close(fd)

    # -- maintenance -------------------------------------------------------------------------
    def clean_temporaries(self, *, min_age: float) -> tuple[int, builtins.list[str]]:
        """Remove temp files and staging folders of writers that are gone.

        Only what modreg writes there is touched: a ``<pid>-<32 hex>.tmp`` file or
        ``.stage`` folder, kept while process ``pid`` lives. Anything else (another name, a
        FIFO, a link) is reported, never removed or opened. Every entry names its writer, so
        ``min_age`` (for backends whose leftovers do not) is not needed here.
        """
        tmp = self.root / _TMP
        if not tmp.is_dir() or tmp.is_symlink():
            return 0, []
        removed, strays = 0, []
        for entry in os.scandir(tmp):
            info = entry.stat(follow_symlinks=False)
            owner = _temp_owner(entry.name, info.st_mode)
            if owner is None:
                strays.append(f"tmp/{entry.name} is not a temp file of modreg: remove it by hand")
                continue
            if alive(owner):
                continue
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            removed += 1
        return removed, strays


def _temp_owner(name: str, mode: int) -> int | None:
    """The pid that wrote the temp entry ``name``; None if modreg never writes such an entry."""
    match = _TEMP_NAME.fullmatch(name)
    is_kind = _TEMP_KINDS.get(match[2]) if match else None
    return int(match[1]) if match and is_kind is not None and is_kind(mode) else None


def _walk(base: Path, folder: str, *, skip_top: str | None) -> Iterator[str]:
    """Keys under ``base`` in sorted order, depth first; folders are never followed as links."""
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        key = f"{folder}/{entry.name}" if folder else entry.name
        if entry.is_dir(follow_symlinks=False):
            if entry.name != skip_top:
                yield from _walk(Path(entry.path), key, skip_top=None)
        else:
            yield key


def _link_exclusive(tmp: Path, final: Path) -> bool:
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    _fsync_dir(final.parent)
    return True


def _os_message(exc: OSError, location: str) -> str:
    reason = exc.strerror or str(exc)
    fix = "free some disk space" if exc.errno == errno.ENOSPC else "check the registry path"
    return f"cannot write to registry {location}: {reason}: {fix}"


def _mismatch(what: str, sha256: str, actual: str) -> IntegrityError:
    return IntegrityError(
        f"{what} changed while it was stored (expected sha256:{sha256[:12]}, "
        f"found sha256:{actual[:12]}): nothing was stored, publish again"
    )


def _write_synced(path: Path, data: bytes, sha256: str | None) -> None:
    if sha256 is not None and (actual := hashlib.sha256(data).hexdigest()) != sha256:
        raise _mismatch("value", sha256, actual)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:  # a short write (full disk) must never leave a torn value
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_hashing(source: Path, target: Path, sha256: str | None) -> None:
    """Copy ``source`` to a new file ``target``, fsynced, hashing exactly the bytes written.

    One pass, double-buffered: while a worker thread writes chunk *i*, this thread reads and
    hashes chunk *i+1* (both release the GIL on large buffers). Because the hash covers the
    written bytes, a source changed mid-copy is refused, never stored under a wrong digest.
    """
    digest = hashlib.sha256()
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
            turn = 1 - turn
        if pending is not None:
            pending.result()
        os.fsync(writer.fileno())
    if sha256 is not None and (actual := digest.hexdigest()) != sha256:
        raise _mismatch(str(source), sha256, actual)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to the new file ``target`` inside the kernel where it can (no hashing)."""
    with open(source, "rb", buffering=0) as reader, open(target, "xb", buffering=0) as writer:
        size = os.fstat(reader.fileno()).st_size
        for start in range(0, size, SPAN):
            _copy_span(reader.fileno(), writer.fileno(), start, min(SPAN, size - start))


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
    data = os.pread(source, min(CHUNK, length), position)
    pwrite_all(target, data, position)
    return len(data)


_KERNEL_COPY = hasattr(os, "copy_file_range")  # Linux
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})
