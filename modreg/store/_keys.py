"""The key layout of a registry, the same on every backend.

::

    modreg-registry.json                   marker: this prefix is a registry (written first)
    objects/sha256/ab/cdef...              file contents, named by their sha256 (immutable)
    records/<ns+name>/<version>.json       version records: the commit point of a publish
    records/<ns+name>/<version>.yank       yank markers
    index/log/<time>-<id>.json             one index entry per publish or yank (append by create)
    index/snapshot/<seq>.json              compacted index: entries + the last log key folded in
    deps/<ns+dep>/<ns+name>@<version>      reverse dependencies: who requires ``dep``
    signatures/<ns+name>/<version>/<signer>.json   signature bundles beside a record
    inflight/<id>.json                     objects a publish in flight relies on (gc keeps them)
    locks/gc.json                          held while gc deletes (publishes wait for it)

A module name ``ns/leaf`` is stored as ``ns+leaf`` (``+`` never occurs in names), so each
tree has one level per name. Every key is written once with ``put_if_absent``; only ``gc``
deletes, and only objects, stale markers and folded index entries.
"""

from __future__ import annotations

import re

__all__ = [
    "GC_LOCK",
    "INDEX_LOG",
    "INDEX_SNAPSHOT",
    "INFLIGHT",
    "LEGACY_INDEX",
    "MARKER",
    "OBJECTS",
    "RECORDS",
    "dependent_key",
    "dependents_prefix",
    "object_key",
    "parse_object_key",
    "parse_record_key",
    "record_key",
    "record_prefix",
    "signature_key",
    "signature_prefix",
    "yank_key",
]

MARKER = "modreg-registry.json"
OBJECTS = "objects/sha256/"
RECORDS = "records/"
INDEX_LOG = "index/log/"
INDEX_SNAPSHOT = "index/snapshot/"
LEGACY_INDEX = "index.jsonl"  # the append-only index of registries made before the snapshot
INFLIGHT = "inflight/"
GC_LOCK = "locks/gc.json"
DEPS = "deps/"
SIGNATURES = "signatures/"

_OBJECT = re.compile(r"objects/sha256/([0-9a-f]{2})/([0-9a-f]{62})")
_RECORD = re.compile(r"records/([^/]+)/([^/]+)\.(json|yank)")


def encode(name: str) -> str:
    return name.replace("/", "+")


def decode(name: str) -> str:
    return name.replace("+", "/")


def object_key(sha256: str) -> str:
    return f"{OBJECTS}{sha256[:2]}/{sha256[2:]}"


def parse_object_key(key: str) -> str | None:
    """The sha256 an object key names, or None if the key is not an object's."""
    match = _OBJECT.fullmatch(key)
    return match[1] + match[2] if match else None


def record_prefix(name: str) -> str:
    return f"{RECORDS}{encode(name)}/"


def record_key(name: str, version: str) -> str:
    return f"{record_prefix(name)}{version}.json"


def yank_key(name: str, version: str) -> str:
    return f"{record_prefix(name)}{version}.yank"


def parse_record_key(key: str) -> tuple[str, str, str] | None:
    """(name, version text, ``json`` or ``yank``) of a record-tree key, else None."""
    match = _RECORD.fullmatch(key)
    return (decode(match[1]), match[2], match[3]) if match else None


def dependents_prefix(dependency: str) -> str:
    return f"{DEPS}{encode(dependency)}/"


def dependent_key(dependency: str, name: str, version: str) -> str:
    return f"{dependents_prefix(dependency)}{encode(name)}@{version}"


def signature_prefix(name: str, version: str) -> str:
    return f"{SIGNATURES}{encode(name)}/{version}/"


def signature_key(name: str, version: str, signer: str) -> str:
    return f"{signature_prefix(name, version)}{signer}.json"
