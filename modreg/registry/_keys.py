"""The key layout of a registry, the same on every backend.

::

    modreg-registry.json                   marker: this prefix is a registry (written first)
    objects/sha256/ab/cdef...              file contents, named by their sha256 (immutable)
    records/<ns+name>/<version>.json       version records: the commit point of a publish
    records/<ns+name>/<version>.yank       yank marker: step 1 of the version's yank state
    records/<ns+name>/<version>.yank.<n>   later steps (n >= 2): yanked again (a new reason)
    records/<ns+name>/<version>.unyank.<n> ... or un-yanked; the highest step is the state
    index/log/<time>-<id>.json             one index entry per publish or yank (append by create)
    index/snapshot/<seq>.json              compacted index: entries + the last log key folded in
    deps/<ns+dep>/<ns+name>@<version>      reverse dependencies: who requires ``dep``
    signatures/<ns+name>/<version>/<signer>.json   signature bundles beside a record
    inflight/<id>.json                     objects a publish in flight relies on (gc keeps them)
    locks/gc.json                          held while gc deletes (publishes wait for it)

A module name ``ns/leaf`` is stored as ``ns+leaf`` (``+`` never occurs in names), so each
tree has one level per name. Every key is written once with ``put_if_absent``; only ``gc``
deletes, and only objects, stale markers and folded index entries.

Readers trust a key only if its name has the exact shape modreg writes (the ``parse_*``
functions below): anything else under these prefixes is a stray that readers skip and
``verify`` reports, never a snapshot to read, a dependent to check or a marker to honour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.version import InvalidVersion, Version

from modreg.errors import InvalidName
from modreg.spec.names import parse_name

__all__ = [
    "DEPS",
    "GC_LOCK",
    "INDEX_LOG",
    "INDEX_SNAPSHOT",
    "INFLIGHT",
    "LEGACY_INDEX",
    "LOCKS",
    "MARKER",
    "OBJECTS",
    "RECORDS",
    "SIGNATURES",
    "SNAPSHOT_MAX",
    "YANK_STEP_MAX",
    "dependent_key",
    "dependents_prefix",
    "is_inflight_key",
    "object_key",
    "parse_dependent_key",
    "parse_log_key",
    "parse_object_key",
    "parse_record_key",
    "parse_signature_key",
    "parse_snapshot_key",
    "record_key",
    "record_prefix",
    "signature_key",
    "signature_prefix",
    "snapshot_key",
    "yank_key",
    "yank_step",
    "yank_step_key",
    "yanked_in",
]

MARKER = "modreg-registry.json"
OBJECTS = "objects/sha256/"
RECORDS = "records/"
INDEX_LOG = "index/log/"
INDEX_SNAPSHOT = "index/snapshot/"
LEGACY_INDEX = "index.jsonl"  # the append-only index of registries made before the snapshot
INFLIGHT = "inflight/"
GC_LOCK = "locks/gc.json"
LOCKS = "locks/"
DEPS = "deps/"
SIGNATURES = "signatures/"
_SNAPSHOT_DIGITS = 12
SNAPSHOT_MAX = 10**_SNAPSHOT_DIGITS - 1  # the last sequence a snapshot name can carry
YANK_STEP_MAX = 999_999  # six digits: yank and un-yank a version that often at most

_OBJECT = re.compile(r"objects/sha256/([0-9a-f]{2})/([0-9a-f]{62})")
_RECORD = re.compile(r"records/([^/]+)/([^/]+)\.(json|yank|(?:un)?yank\.[1-9][0-9]{0,5})")
_LOG = re.compile(r"index/log/([0-9]{8}T[0-9]{6}\.[0-9]{6}Z)-[0-9a-f]{12}\.json")
_SNAPSHOT = re.compile(rf"index/snapshot/([0-9]{{{_SNAPSHOT_DIGITS}}})\.json")
_DEPENDENT = re.compile(r"deps/([^/]+)/([^/@]+)@([^/@]+)")
_SIGNATURE = re.compile(r"signatures/([^/]+)/([^/]+)/([0-9a-f]{1,128})\.json")
_INFLIGHT = re.compile(r"inflight/[0-9a-f]{32}\.json")


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


def yank_step_key(name: str, version: str, step: int, yanked: bool) -> str:
    """The marker of step ``step`` of a version's yank state (step 1 is :func:`yank_key`)."""
    if not 1 <= step <= YANK_STEP_MAX or (step == 1 and not yanked):
        raise ValueError(f"yank step {step} ({'yank' if yanked else 'unyank'}) has no key")
    if step == 1:
        return yank_key(name, version)
    return f"{record_prefix(name)}{version}.{'yank' if yanked else 'unyank'}.{step}"


def parse_record_key(key: str) -> tuple[str, str, str] | None:
    """(name, version text, kind) of a record-tree key, else None.

    The kind is ``json`` (the record), ``yank`` (step 1) or ``yank.<n>`` / ``unyank.<n>``.
    """
    match = _RECORD.fullmatch(key)
    return (decode(match[1]), match[2], match[3]) if match else None


def yank_step(kind: str) -> tuple[int, bool] | None:
    """(step, yanked) of a record-tree kind from :func:`parse_record_key`; None for ``json``."""
    if kind == "json":
        return None
    if kind == "yank":
        return 1, True
    word, _, number = kind.partition(".")
    return int(number), word == "yank"


def yanked_in(kinds: Iterable[str]) -> tuple[int, bool]:
    """(step, yanked) of the newest yank step among a version's kinds; (0, False) if none.

    The one rule of yanked-ness: the highest step wins (a yank over an un-yank on a tie,
    which only strays can make). ``Registry.versions`` and ``verify`` both read it.
    """
    steps = [found for kind in kinds if (found := yank_step(kind)) is not None]
    return max(steps, default=(0, False))


def dependents_prefix(dependency: str) -> str:
    return f"{DEPS}{encode(dependency)}/"


def dependent_key(dependency: str, name: str, version: str) -> str:
    return f"{dependents_prefix(dependency)}{encode(name)}@{version}"


def signature_prefix(name: str, version: str) -> str:
    return f"{SIGNATURES}{encode(name)}/{version}/"


def signature_key(name: str, version: str, signer: str) -> str:
    return f"{signature_prefix(name, version)}{signer}.json"


def parse_log_key(key: str) -> str | None:
    """The UTC time stamp an index log key carries, or None if the key is not a log key."""
    match = _LOG.fullmatch(key)
    return match[1] if match else None


def snapshot_key(sequence: int) -> str:
    if not 0 < sequence <= SNAPSHOT_MAX:
        raise ValueError(f"snapshot sequence {sequence} is outside 1..{SNAPSHOT_MAX}")
    return f"{INDEX_SNAPSHOT}{sequence:0{_SNAPSHOT_DIGITS}d}.json"


def parse_snapshot_key(key: str) -> int | None:
    """The sequence number of a snapshot key (``index/snapshot/<12 digits>.json``), else None."""
    match = _SNAPSHOT.fullmatch(key)
    return int(match[1]) if match and int(match[1]) > 0 else None


def _name(encoded: str) -> str | None:
    try:
        return parse_name(decode(encoded))
    except InvalidName:
        return None


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return text.strip() == text


def parse_dependent_key(key: str) -> tuple[str, str, str] | None:
    """(dependency, dependent name, version) of a reverse-dependency key, else None."""
    match = _DEPENDENT.fullmatch(key)
    if match is None:
        return None
    dependency, name = _name(match[1]), _name(match[2])
    if dependency is None or name is None or not _is_version(match[3]):
        return None
    return dependency, name, match[3]


def parse_signature_key(key: str) -> tuple[str, str, str] | None:
    """(name, version, signer fingerprint) of a signature key, else None."""
    match = _SIGNATURE.fullmatch(key)
    name = _name(match[1]) if match else None
    if match is None or name is None or not _is_version(match[2]):
        return None
    return name, match[2], match[3]


def is_inflight_key(key: str) -> bool:
    """Whether ``key`` has the shape of a publish's in-flight marker."""
    return _INFLIGHT.fullmatch(key) is not None
