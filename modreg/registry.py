"""Publish, resolve, pull, list, show, verify and yank modules over a :class:`Store`.

The rules (ARCHITECTURE.md, registry semantics): a published ``name@version`` is immutable;
publishing the same bytes again is a no-op, different bytes are refused; yanked versions drop
out of ranges but resolve by exact pin; a yanked version is never reused; every read
re-verifies digest and size.

Example:
    >>> import modreg, tempfile
    >>> registry = modreg.Registry(tempfile.mkdtemp())
    >>> registry.publish("modules/gravity").ref            # doctest: +SKIP
    'physics/gravity@1.0.0'
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from modreg._config import Settings
from modreg._content import MANIFEST_FILE, FileEntry, file_matches, is_hex_digest, tree_digest
from modreg.errors import IntegrityError, InvalidModule, ModuleNotFound, VersionExists
from modreg.module import Module
from modreg.spec.names import ModuleRef, parse_name, parse_version
from modreg.store import IndexEntry, ObjectProblem, Store, open_store

if TYPE_CHECKING:
    from modreg.spec.manifest import Manifest

__all__ = ["ListEntry", "PublishResult", "Registry", "VerifyReport", "VersionRecord"]

RECORD_SCHEMA = 2  # 2: files carry a blake3 hash; 1 (sha256 only) is still read
ORPHAN_AGE_SECONDS = 3600.0
_RECORD_FIELDS = frozenset(
    {"schema_version", "name", "version", "digest", "kind", "summary", "files", "published"}
)


@dataclass(frozen=True)
class VersionRecord:
    """What the registry stores for one published version (the publish commit point)."""

    name: str
    version: str
    digest: str
    kind: str
    summary: str
    files: tuple[FileEntry, ...]
    published: str
    schema_version: int = RECORD_SCHEMA

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> bytes:
        data = {
            "schema_version": self.schema_version,
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "kind": self.kind,
            "summary": self.summary,
            "files": [f.to_json() for f in self.files],
            "published": self.published,
        }
        return json.dumps(data, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> VersionRecord:
        """Parse a stored record, strictly: any unknown, missing or mistyped field is refused.

        Raises:
            ValueError: the bytes are not a well-formed record.
        """
        raw = json.loads(data)
        if not isinstance(raw, dict) or set(raw) != _RECORD_FIELDS:
            raise ValueError("not a version record (fields differ)")
        schema = raw["schema_version"]
        if type(schema) is not int or schema not in (1, 2):
            raise ValueError(f"unknown record schema {schema!r}")
        texts = {k: raw[k] for k in _RECORD_FIELDS - {"schema_version", "files"}}
        if not all(isinstance(v, str) for v in texts.values()):
            raise ValueError("a text field of the record is not text")
        files = raw["files"]
        if not isinstance(files, list):
            raise ValueError("record files are not a list")
        return cls(
            files=tuple(_file_entry(f, schema) for f in files), schema_version=schema, **texts
        )


def _file_entry(raw: Any, schema: int) -> FileEntry:
    keys = {"path", "sha256", "size"} | ({"blake3"} if schema >= 2 else set())
    if not isinstance(raw, dict) or set(raw) != keys:
        raise ValueError("a file entry of the record has other fields")
    path, size = raw["path"], raw["size"]
    # Pulls write each file under its recorded name: one plain name, nothing that climbs.
    if not isinstance(path, str) or path in {"", ".", ".."} or "/" in path or "\\" in path:
        raise ValueError(f"file name {path!r} in the record is not a plain name")
    if type(size) is not int or size < 0:
        raise ValueError(f"size {size!r} of {path} is not a byte count")
    if not is_hex_digest(raw["sha256"]) or not is_hex_digest(raw.get("blake3", "0" * 64)):
        raise ValueError(f"a hash of {path} is not 64 hex digits")
    return FileEntry(path, raw["sha256"], size, raw.get("blake3"))


@dataclass(frozen=True)
class PublishResult:
    """Outcome of a publish: ``created`` is False when identical bytes were already there."""

    name: str
    version: str
    digest: str
    created: bool

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class ListEntry:
    """One row of ``modreg list``: a name with its newest usable version."""

    name: str
    latest: str
    kind: str
    summary: str
    versions: tuple[str, ...]
    yanked: tuple[str, ...]


@dataclass
class VerifyReport:
    """What ``verify`` checked and what it found."""

    objects: int = 0
    records: int = 0
    temporaries_removed: int = 0
    problems: list[ObjectProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Registry:
    """A module registry over a store (a local directory by default)."""

    def __init__(self, location: str | Path | Store | None = None) -> None:
        if location is None:
            location = Settings.from_env().registry
        self.store: Store = (
            open_store(str(location)) if isinstance(location, str | Path) else location
        )

    def __repr__(self) -> str:
        return f"Registry({self.store.location!r})"

    # -- publish -----------------------------------------------------------------------------
    def publish(self, directory: str | Path) -> PublishResult:
        """Validate a module directory and store it as an immutable version.

        Raises:
            InvalidModule, InvalidManifest (and subclasses), InvalidWeights: the directory is
                not a valid, safe module; nothing is stored.
            VersionExists: the version holds different bytes, or was yanked.
        """
        module = Module.from_dir(directory)
        manifest = module.manifest
        existing = self._existing(manifest.name, manifest.version, module.digest)
        # Objects are (re)stored even for an identical republish: that repairs damage.
        for entry in module.files:
            self.store.put_object(Path(directory) / entry.path, entry.sha256, entry.size)
        if existing is not None:
            return existing
        record = VersionRecord(
            name=manifest.name,
            version=manifest.version,
            digest=module.digest,
            kind=manifest.kind,
            summary=manifest.summary,
            files=module.files,
            published=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        winner = self.store.create_record(manifest.name, manifest.version, record.to_json())
        if winner is not None:  # another publisher committed first
            return self._compare(manifest.name, manifest.version, module.digest, winner)
        self.store.append_index(
            IndexEntry(
                manifest.name, manifest.version, module.digest, manifest.kind, manifest.summary
            )
        )
        return PublishResult(manifest.name, manifest.version, module.digest, created=True)

    def _existing(self, name: str, version: str, digest: str) -> PublishResult | None:
        data = self.store.read_record(name, version)
        return None if data is None else self._compare(name, version, digest, data)

    def _compare(self, name: str, version: str, digest: str, data: bytes) -> PublishResult:
        record = self._parse_record(data, f"{name}@{version}")
        if record.digest != digest:
            raise VersionExists(
                f"{name}@{version} is already published with different content "
                f"({record.digest[:19]}..., yours {digest[:19]}...): versions are immutable, "
                "bump the version in modreg.yaml"
            )
        if self.store.versions(name).get(version):
            raise VersionExists(
                f"{name}@{version} was yanked and cannot be published again: bump the version"
            )
        return PublishResult(name, version, digest, created=False)

    # -- resolve -----------------------------------------------------------------------------
    def resolve(self, ref: str | ModuleRef) -> VersionRecord:
        """The record of the newest version matching ``ref`` (``name@spec``).

        Raises:
            InvalidName, InvalidVersion: the reference does not parse.
            ModuleNotFound: no version matches; the message lists the versions that exist.
        """
        ref = ModuleRef.parse(ref) if isinstance(ref, str) else ref
        versions = self.store.versions(ref.name)
        candidates = [
            (parsed, text)
            for text, yanked in versions.items()
            if ref.spec.admits(parsed := Version(text), yanked=yanked)
        ]
        if not candidates:
            raise ModuleNotFound(_not_found_message(ref, versions))
        _, text = max(candidates)
        data = self.store.read_record(ref.name, text)
        assert data is not None
        return self._parse_record(data, f"{ref.name}@{text}")

    def _parse_record(self, data: bytes, ref: str) -> VersionRecord:
        try:
            record = VersionRecord.from_json(data)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise IntegrityError(f"record of {ref} is damaged: run 'modreg verify'") from exc
        if f"{record.name}@{record.version}" != ref or tree_digest(record.files) != record.digest:
            raise IntegrityError(f"record of {ref} does not match its digest: run 'modreg verify'")
        return record

    # -- pull --------------------------------------------------------------------------------
    def pull(self, ref: str | ModuleRef, to: str | Path | None = None) -> Module:
        """Fetch a verified copy of a module into ``to`` (or the local cache).

        Raises:
            ModuleNotFound: the reference resolves to nothing.
            IntegrityError: stored bytes do not match their digest (nothing is written).
            InvalidModule: ``to`` exists and holds something else.
        """
        record = self.resolve(ref)
        target = Path(to) if to is not None else _cache_dir(record)
        if target.exists():
            cached = _verified_copy(target, record)
            if cached is not None:
                return cached
            if to is not None:
                raise InvalidModule(
                    f"{str(target)!r} already exists and does not hold {record.ref}: "
                    "choose an empty directory or remove it"
                )
            shutil.rmtree(target)  # a damaged cache entry is refetched
        return self._materialise(record, target)

    def _materialise(self, record: VersionRecord, target: Path) -> Module:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
        staging.mkdir()
        try:
            for entry in record.files:
                self.store.copy_object_to(entry, staging / entry.path)
            try:
                staging.rename(target)
            except OSError:  # a concurrent pull of the same version got there first
                cached = _verified_copy(target, record)
                if cached is None:
                    raise
                return cached
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return _module(target, record)

    def manifest(self, ref: str | ModuleRef) -> tuple[VersionRecord, Manifest]:
        """The record and manifest of a version, read (and verified) from the store."""
        from modreg.spec.manifest import parse_manifest

        record = self.resolve(ref)
        entry = next(e for e in record.files if e.path == MANIFEST_FILE)
        text = self.store.read_object(entry.sha256, entry.size)
        return record, parse_manifest(text, source=f"{record.ref}:{MANIFEST_FILE}", trusted=True)

    # -- list / yank / verify ----------------------------------------------------------------
    def list(self) -> list[ListEntry]:
        """Every module name with its newest usable version (from the index)."""
        by_name: dict[str, list[IndexEntry]] = {}
        for entry in self.store.index():
            by_name.setdefault(entry.name, []).append(entry)
        rows = []
        for name in sorted(by_name):
            entries = sorted(by_name[name], key=lambda e: _version(e.version))
            usable = [e for e in entries if not e.yanked] or entries
            newest = usable[-1]
            rows.append(
                ListEntry(
                    name,
                    newest.version,
                    newest.kind,
                    newest.summary,
                    tuple(e.version for e in entries),
                    tuple(e.version for e in entries if e.yanked),
                )
            )
        return rows

    def yank(self, ref: str, reason: str = "") -> VersionRecord:
        """Mark an exact ``name@version`` as yanked (ranges skip it; exact pins still work).

        Raises:
            InvalidVersion: ``ref`` is not an exact ``name@version``.
            ModuleNotFound: the version does not exist.
        """
        name, _, version = ref.partition("@")
        parse_name(name)
        version = str(parse_version(version))
        record = self.resolve(f"{name}@{version}")
        if not self.store.versions(name).get(version):
            self.store.mark_yanked(name, version, reason)
            self.store.append_index(
                IndexEntry(name, version, record.digest, record.kind, record.summary, yanked=True)
            )
        return record

    def verify(self) -> VerifyReport:
        """Re-hash every object, check every record, rebuild the index, clean crash leftovers."""
        report = VerifyReport(temporaries_removed=self.store.clean_temporaries())
        intact: dict[str, FileEntry] = {}  # sha256 -> what the object holds
        for sha256, _ in self.store.iter_objects():
            report.objects += 1
            found = self.store.hash_object(sha256)
            if found is None:  # removed while we looked (gc)
                continue
            if found.sha256 == sha256:
                intact[sha256] = found
            else:
                problem = f"damaged (content hashes to {found.sha256[:12]})"
                report.problems.append(ObjectProblem(f"object sha256:{sha256}", problem))
        index: list[IndexEntry] = []
        for name in self.store.names():
            for version, yanked in sorted(self.store.versions(name).items()):
                report.records += 1
                entry = self._verify_record(name, version, yanked, intact, report)
                if entry is not None:
                    index.append(entry)
        self.store.rebuild_index(index)
        return report

    def gc(self, *, min_age: float = ORPHAN_AGE_SECONDS) -> tuple[int, int]:
        """Remove crash leftovers: temp files, and objects no record refers to.

        Unreferenced objects younger than ``min_age`` seconds are kept: a publish in flight
        stores its objects before its record.

        Returns:
            (temporary files removed, orphan objects removed).
        """
        temporaries = self.store.clean_temporaries()
        referenced = {
            entry.sha256
            for name in self.store.names()
            for version in self.store.versions(name)
            for entry in self._parse_record(
                self.store.read_record(name, version) or b"", f"{name}@{version}"
            ).files
        }
        orphans = [sha for sha, _ in self.store.iter_objects() if sha not in referenced]
        removed = sum(self.store.remove_object(sha, min_age=min_age) for sha in orphans)
        return temporaries, removed

    def _verify_record(
        self,
        name: str,
        version: str,
        yanked: bool,
        intact: dict[str, FileEntry],
        report: VerifyReport,
    ) -> IndexEntry | None:
        ref = f"{name}@{version}"
        try:
            record = self._parse_record(self.store.read_record(name, version) or b"", ref)
        except IntegrityError as exc:
            report.problems.append(ObjectProblem(f"record {ref}", str(exc)))
            return None
        for entry in record.files:
            found = intact.get(entry.sha256)
            if not self.store.has_object(entry.sha256):
                report.problems.append(
                    ObjectProblem(
                        f"object sha256:{entry.sha256}", f"missing (file {entry.path} of {ref})"
                    )
                )
            elif found is not None and (
                found.size != entry.size or entry.blake3 not in (None, found.blake3)
            ):  # a record whose digest holds but whose claims about the bytes do not
                report.problems.append(
                    ObjectProblem(
                        f"record {ref}",
                        f"size or blake3 of {entry.path} differ from object sha256:"
                        f"{entry.sha256[:12]}: re-publish from the source folder",
                    )
                )
        return IndexEntry(name, version, record.digest, record.kind, record.summary, yanked)


@functools.lru_cache(maxsize=65536)
def _version(text: str) -> Version:
    return Version(text)


def _not_found_message(ref: ModuleRef, versions: dict[str, bool]) -> str:
    if not versions:
        return f"no module named {ref.name!r} in the registry: publish it first or check the name"
    listed = ", ".join(
        f"{v}{' (yanked)' if y else ''}"
        for v, y in sorted(versions.items(), key=lambda i: Version(i[0]))
    )
    return f"no version of {ref.name} matches {str(ref.spec)!r}; available: {listed}"


def _cache_dir(record: VersionRecord) -> Path:
    return Settings.from_env().cache / record.name.replace("/", "+") / record.version


def _module(directory: Path, record: VersionRecord) -> Module:
    return Module(directory, record.files, record.digest, record.name, record.version, record.kind)


def _verified_copy(directory: Path, record: VersionRecord) -> Module | None:
    """The module at ``directory`` if it holds exactly the record's files, else None."""
    if not directory.is_dir():
        return None
    names = sorted(p.name for p in directory.iterdir())
    if names != sorted(e.path for e in record.files):
        return None
    if not all(file_matches(directory / e.path, e) for e in record.files):
        return None
    return _module(directory, record)
