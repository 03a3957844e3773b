"""``verify`` and ``gc``: the registry checking and cleaning itself, on any backend.

``verify`` re-hashes every object by sha256 and BLAKE3, checks every record against the
objects and the manifest it names, reports every stray entry (a FIFO, a directory where a
file belongs, a file that is not a version's record) without tripping over it, and rebuilds
the index and the reverse-dependency keys from the records.

``gc`` removes what crashed writers left: temp files, stale in-flight markers, and objects no
record refers to. It holds ``locks/gc.json`` while it deletes, and it reads the in-flight
markers *before* the records, so an object is never deleted under a publish: a publish that
started earlier is protected by its marker (or has committed its record by then), and one
that starts later waits for the lock before it relies on any object.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modreg import _index
from modreg._content import MANIFEST_FILE, FileEntry
from modreg._index import IndexEntry
from modreg._records import RECORD_LIMIT, VersionRecord, parse_record
from modreg.errors import IntegrityError, ModregError, StoreError
from modreg.store._deliver import hash_key
from modreg.store._keys import (
    GC_LOCK,
    INDEX_LOG,
    INDEX_SNAPSHOT,
    INFLIGHT,
    dependent_key,
    object_key,
    parse_object_key,
    parse_record_key,
    record_key,
    yank_key,
)

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = ["ObjectProblem", "VerifyReport", "gc", "verify"]

INFLIGHT_STALE = 86400.0  # a publish marker older than a day belongs to a publish that died
FOLD_GRACE = 3600.0  # folded index keys are kept this long after the snapshot that folds them
_HEX = re.compile(rb"[0-9a-f]{64}")
_BOOKKEEPING = ("index/", "index.jsonl", "deps/", "signatures/", "inflight/", "locks/")


@dataclass(frozen=True)
class ObjectProblem:
    """Something ``verify`` found damaged, missing or out of place."""

    key: str
    problem: str


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

    def add(self, key: str, problem: str) -> None:
        self.problems.append(ObjectProblem(key, problem))


def verify(registry: Registry) -> VerifyReport:
    """Check everything the registry holds; rebuild what is derived from the records."""
    store = registry.store
    bound = _index.snapshot_bound(store, time.time())  # before the scan: see modreg/_index.py
    removed, strays = store.clean_temporaries(min_age=3600.0)
    report = VerifyReport(temporaries_removed=removed)
    for stray in strays:
        report.add("tmp", stray)
    intact: dict[str, FileEntry] = {}
    versions: dict[tuple[str, str], set[str]] = {}
    for key in store.list(""):
        _classify(registry, key, report, intact, versions)
    entries = []
    for (name, version), kinds in sorted(versions.items()):
        if "json" not in kinds:
            report.add(yank_key(name, version), "yank marker without a record: remove it")
            continue
        report.records += 1
        entry = _check_version(registry, name, version, "yank" in kinds, intact, report)
        if entry is not None:
            entries.append(entry)
    _, sequence = _index.latest_snapshot(store)
    while not _index.write_snapshot(store, entries, through=bound, sequence=sequence + 1):
        sequence += 1
    return report


def _classify(
    registry: Registry,
    key: str,
    report: VerifyReport,
    intact: dict[str, FileEntry],
    versions: dict[tuple[str, str], set[str]],
) -> None:
    from modreg.registry import _version

    if key.startswith("objects/"):
        sha256 = parse_object_key(key)
        if sha256 is None:
            report.add(key, "stray entry among the objects (not a sha256 name): remove it")
            return
        report.objects += 1
        try:
            found = hash_key(registry.store, key)
        except IntegrityError as exc:
            report.add(f"object sha256:{sha256}", str(exc))
            return
        if found is None:  # removed while we looked (gc)
            return
        if found.sha256 == sha256:
            intact[sha256] = found
        else:
            report.add(
                f"object sha256:{sha256}", f"damaged (content hashes to {found.sha256[:12]})"
            )
    elif key.startswith("records/"):
        parsed = parse_record_key(key)
        if parsed is None or _version(parsed[1]) is None:
            report.add(key, "stray entry among the records (not NAME/VERSION.json): remove it")
            return
        versions.setdefault((parsed[0], parsed[1]), set()).add(parsed[2])
    elif key != "modreg-registry.json" and not key.startswith(_BOOKKEEPING):
        report.add(key, "stray entry in the registry: remove it")


def _check_version(
    registry: Registry,
    name: str,
    version: str,
    yanked: bool,
    intact: dict[str, FileEntry],
    report: VerifyReport,
) -> IndexEntry | None:
    ref = f"{name}@{version}"
    try:
        record = parse_record(
            registry.store.get(record_key(name, version), limit=RECORD_LIMIT) or b"", ref
        )
    except IntegrityError as exc:
        report.add(f"record {ref}", str(exc))
        return None
    healthy = True
    for entry in record.files:
        found = intact.get(entry.sha256)
        if found is None:
            key = f"object sha256:{entry.sha256}"
            try:
                present = registry.store.head(object_key(entry.sha256)) is not None
            except IntegrityError as exc:  # there, but not a file
                present = True
                if all(p.key != key for p in report.problems):
                    report.add(key, str(exc))
            if not present:
                report.add(key, f"missing (file {entry.path} of {ref})")
            healthy = False
        elif found.size != entry.size or entry.blake3 not in (None, found.blake3):
            report.add(
                f"record {ref}",
                f"size or blake3 of {entry.path} differ from object sha256:{entry.sha256[:12]}: "
                "re-publish from the source folder",
            )
            healthy = False
    if healthy:
        _check_manifest(registry, record, report)
    return IndexEntry(name, version, record.digest, record.kind, record.summary, yanked)


def _check_manifest(registry: Registry, record: VersionRecord, report: VerifyReport) -> None:
    """The record's name, version, kind and summary must be the manifest's own."""
    from modreg.spec.manifest import parse_manifest

    if not any(e.path == MANIFEST_FILE for e in record.files):
        report.add(f"record {record.ref}", f"lists no {MANIFEST_FILE}: re-publish the module")
        return
    try:
        text = registry.read_file(record, MANIFEST_FILE)
        manifest = parse_manifest(text, source=f"{record.ref}:{MANIFEST_FILE}")
    except ModregError as exc:
        report.add(f"record {record.ref}", f"its manifest does not validate: {exc}")
        return
    said = (record.name, record.version, record.kind, record.summary)
    real = (manifest.name, manifest.version, manifest.kind, manifest.summary)
    if said != real:
        report.add(
            f"record {record.ref}",
            f"claims {said[:3]} but its manifest says {real[:3]}: the record is forged or "
            "damaged; yank it and re-publish",
        )
        return
    for dependency in sorted(manifest.requires or {}):  # rebuild the reverse-dependency keys
        registry.store.put_if_absent(dependent_key(dependency, record.name, record.version), b"")


def gc(registry: Registry, *, min_age: float) -> tuple[int, int]:
    """Remove leftovers (see the module docstring); returns (leftovers, orphan objects)."""
    store = registry.store
    leftovers, _ = store.clean_temporaries(min_age=min_age)
    leftovers += _clean_partial_pulls(registry)
    _take_lock(registry)
    started = time.monotonic()
    try:
        protected, stale = _inflight_objects(registry)
        leftovers += stale
        referenced = _referenced_objects(registry)
        removed = 0
        now = time.time()
        from modreg.registry import GC_LOCK_STALE

        for key in list(store.list("objects/sha256/")):
            sha256 = parse_object_key(key)
            if sha256 is None or sha256 in referenced or sha256 in protected:
                continue
            try:
                info = store.head(key)
            except IntegrityError:  # not a file: verify reports it, gc leaves it alone
                continue
            if info is None or now - info.modified < min_age:
                continue
            if time.monotonic() - started > GC_LOCK_STALE / 2:
                break  # publishes treat an old lock as stale: stop well before that
            store.delete(key)
            removed += 1
        leftovers += _fold_index(registry)
    finally:
        store.delete(GC_LOCK)
    return leftovers, removed


def _take_lock(registry: Registry) -> None:
    from modreg.registry import GC_LOCK_STALE

    store = registry.store
    body = json.dumps({"created": time.time()}).encode()
    for _ in range(2):
        if store.put_if_absent(GC_LOCK, body):
            return
        held = store.head(GC_LOCK)
        if held is not None and time.time() - held.modified > GC_LOCK_STALE:
            store.delete(GC_LOCK)  # left by a gc that died
            continue
        break
    raise StoreError(
        f"another gc is running on {registry.location}: wait for it to finish, or delete "
        f"{GC_LOCK} if it crashed"
    )


def _inflight_objects(registry: Registry) -> tuple[set[str], int]:
    store = registry.store
    protected: set[str] = set()
    stale = 0
    for key in list(store.list(INFLIGHT)):
        info = store.head(key)
        data = store.get(key, limit=RECORD_LIMIT)
        if info is None or data is None:
            continue
        if time.time() - info.modified > INFLIGHT_STALE:
            store.delete(key)
            stale += 1
            continue
        protected |= {m.decode() for m in _HEX.findall(data)}  # whatever it says, keep
    return protected, stale


def _referenced_objects(registry: Registry) -> set[str]:
    """sha256 of every object any record names (a damaged record protects what it mentions)."""
    store = registry.store
    referenced: set[str] = set()
    for key in store.list("records/"):
        parsed = parse_record_key(key)
        if parsed is None or parsed[2] != "json":
            continue
        data = store.get(key, limit=RECORD_LIMIT) or b""
        try:
            record = parse_record(data, f"{parsed[0]}@{parsed[1]}")
            referenced |= {e.sha256 for e in record.files}
        except IntegrityError:
            referenced |= {m.decode() for m in _HEX.findall(data)}
    return referenced


def _fold_index(registry: Registry) -> int:
    """Delete index keys a snapshot has folded, once it is old enough that no reader needs them."""
    store = registry.store
    newest, _ = _index.latest_snapshot(store)
    info = store.head(newest) if newest else None
    if newest is None or info is None or time.time() - info.modified < FOLD_GRACE:
        return 0
    data = store.get(newest, limit=_index.SNAPSHOT_LIMIT) or b"{}"
    try:
        through = json.loads(data).get("through", "")
    except (ValueError, AttributeError, RecursionError):
        return 0
    removed = 0
    for key in list(store.list(INDEX_SNAPSHOT)):
        if key < newest:
            store.delete(key)
            removed += 1
    for key in list(store.list(INDEX_LOG)):
        if not isinstance(through, str) or key > through:
            break
        store.delete(key)
        removed += 1
    return removed


def _clean_partial_pulls(registry: Registry) -> int:
    """Staging folders of pulls that were killed (``.NAME.PID-ID.partial`` in the cache)."""
    from modreg.store.local import _alive

    cache = registry.settings.cache
    removed = 0
    if not cache.is_dir():
        return 0
    for partial in list(cache.glob("*/.*.partial")) + list(cache.glob("*/.*.trash")):
        pid = partial.name.rsplit(".", 2)[-2].split("-", 1)[0]
        if partial.name.endswith(".partial") and pid.isdigit() and _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(partial)
            removed += 1
    return removed
