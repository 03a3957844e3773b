"""Local folders on both sides of a registry: the private copy a publish validates and
hashes, and the verified, atomic install a pull ends with.

Both touch only regular files, never following a link, so a folder edited or swapped while
a publish or pull runs cannot slip other bytes in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

from modreg._content import file_matches
from modreg.errors import IntegrityError, InvalidModule, ModregError
from modreg.module import Module
from modreg.registry._records import VersionRecord

__all__ = [
    "copy_regular",
    "install",
    "module_at",
    "occupied",
    "regular_files",
    "validated",
    "verified_copy",
    "within",
]


def within(path: Path, root: Path) -> bool:
    """Whether ``path`` lies inside ``root`` (False when either cannot be resolved)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def validated(staged: Path, directory: Path) -> Module:
    """The module in ``staged``; errors name the user's folder, not the staging copy."""
    try:
        return Module.from_dir(staged)
    except ModregError as exc:
        message = str(exc).replace(str(staged), str(directory))
        if message == str(exc):
            raise
        raise type(exc)(message) from exc


def regular_files(directory: Path) -> list[str] | None:
    """Names of the files in ``directory``; None if it is not a folder of regular files only."""
    if not directory.is_dir():
        return None
    with os.scandir(directory) as entries:
        found = [(e.name, e.is_file(follow_symlinks=False)) for e in entries]
    return None if not all(regular for _, regular in found) else [n for n, _ in found]


def copy_regular(source: Path, target: Path) -> None:
    """Copy one regular file (never following a link), as it is at this moment."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        with open(fd, "rb", closefd=False) as reader, open(target, "xb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 23)
    finally:
        os.close(fd)


def occupied(target: Path, record: VersionRecord) -> InvalidModule:
    """The error for a pull into a folder that holds something else."""
    return InvalidModule(
        f"{str(target)!r} already exists and does not hold {record.ref}: "
        "choose an empty directory or remove it"
    )


def module_at(directory: Path, record: VersionRecord) -> Module:
    """The module a record describes, at ``directory`` (its files already verified)."""
    return Module(directory, record.files, record.digest, record.name, record.version, record.kind)


def verified_copy(directory: Path, record: VersionRecord) -> Module | None:
    """The module at ``directory`` if it holds exactly the record's files, else None."""
    try:
        if not directory.is_dir():
            return None
        names = sorted(p.name for p in directory.iterdir())
        if names != sorted(e.path for e in record.files):
            return None
        if not all(file_matches(directory / e.path, e) for e in record.files):
            return None
    except OSError:  # a concurrent pull moved it away while we looked
        return None
    return module_at(directory, record)


def install(staging: Path, target: Path, record: VersionRecord, *, replace_damaged: bool) -> Module:
    """Move a verified staging folder into place; concurrent pulls of one target agree.

    If ``target`` appears meanwhile and holds the right files, it is used. A damaged copy (a
    cache entry) is moved aside atomically and replaced, so pullers racing over it never see
    a half-removed folder.
    """
    for _ in range(16):
        try:
            staging.rename(target)
            return module_at(target, record)
        except OSError:
            cached = verified_copy(target, record)
            if cached is not None:
                return cached
            if not replace_damaged:
                raise occupied(target, record) from None
            trash = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.trash"
            with contextlib.suppress(FileNotFoundError):
                target.rename(trash)
                shutil.rmtree(trash, ignore_errors=True)
    raise IntegrityError(f"could not install {record.ref} at {target}: too many concurrent pulls")
