"""Version records: what the registry stores for one published version (its commit point).

A record lists the module's files (path, size, sha256 and BLAKE3) and its digest, the sha256 of
that canonical list. Schema 2 (current) carries BLAKE3; schema 1 records (sha256 only) are still
read. Parsing is strict and by hand (no pydantic on the pull path): any unknown, missing or
mistyped field, a file name that could climb out of the module, or a record over
:data:`RECORD_LIMIT` bytes is refused.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from modreg._content import FileEntry, is_hex_digest, tree_digest
from modreg.errors import IntegrityError

__all__ = [
    "RECORD_LIMIT",
    "RECORD_SCHEMA",
    "SIGNATURE_LIMIT",
    "VersionRecord",
    "check_identity",
    "parse_record",
]

RECORD_LIMIT = 1 << 20  # a record lists a handful of files: a megabyte is already absurd
SIGNATURE_LIMIT = 1 << 20  # a signature bundle, or a yank marker, is read up to this size

RECORD_SCHEMA = 2  # 2: files carry a blake3 hash; 1 (sha256 only) is still read
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


def parse_record(data: bytes, ref: str) -> VersionRecord:
    """Parse and check the record of ``ref`` (``name@version``): fields, names and digest.

    Raises:
        IntegrityError: the bytes are not a well-formed record of ``ref`` whose digest holds.
    """
    try:
        record = VersionRecord.from_json(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise IntegrityError(f"record of {ref} is damaged ({exc}): run 'modreg verify'") from exc
    if f"{record.name}@{record.version}" != ref or tree_digest(record.files) != record.digest:
        raise IntegrityError(f"record of {ref} does not match its digest: run 'modreg verify'")
    return record


def check_identity(record: VersionRecord, manifest: bytes) -> None:
    """The manifest a record delivers must name that record's module, version and kind.

    A record's files are content-addressed, so a writer can copy a record (a yanked version,
    a signed one) under another name or version without breaking any hash; the manifest
    among the files, which the signatures cover too, is what binds bytes to ``name@version``.

    Raises:
        IntegrityError: the manifest names another module, version or kind.
    """
    found = _identity(manifest)
    if found != (record.name, record.version, record.kind):
        name, version, kind = (str(part)[:80] for part in found)
        raise IntegrityError(
            f"the record of {record.ref} ({record.kind}) delivers the manifest of "
            f"{name}@{version} ({kind}): the record was copied or forged, so nothing was "
            "delivered; run 'modreg verify' and re-publish or yank that version"
        )


@functools.lru_cache(maxsize=1024)
def _identity(manifest: bytes) -> tuple[object, str, object]:
    """(name, normalised version, kind) a manifest states; read by the base YAML loader.

    The base loader resolves no tags and reads every scalar as text, which is all three
    fields are, at a fraction of the full loader's cost (this is on every pull); published
    manifests were validated by the full one. Cached by the bytes: a process that pulls
    the same version again (a hybrid's parts, a loop) pays once.
    """
    import yaml
    from packaging.version import InvalidVersion, Version

    try:
        raw = yaml.load(manifest, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
        said = raw if isinstance(raw, dict) else {}
        version = str(Version(str(said.get("version"))))
    except (yaml.YAMLError, InvalidVersion, RecursionError, ValueError):
        said, version = {}, "?"
    return said.get("name"), version, said.get("kind")
