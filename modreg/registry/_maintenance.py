"""``verify`` and ``gc``: the registry checking and cleaning itself, on any backend.

``verify`` re-hashes every object by sha256 and BLAKE3, checks every record against the
objects and the manifest it names, reports every stray entry (a FIFO, a directory where a
file belongs, a file that is not a version's record, a bookkeeping key whose name is not
of the shape modreg writes, is unreadable or over its limit, or names a version that is not
published) without tripping over it, and rebuilds the index and the reverse-dependency keys
from the records.

``gc`` removes what crashed writers left: temp files, stale in-flight markers, and objects no
record refers to. It holds ``locks/gc.json`` while it deletes, and it reads the in-flight
markers *before* the records, so an object is never deleted under a publish: a publish that
started earlier is protected by its marker (or has committed its record by then), and one
that starts later waits for the lock before it relies on any object. It removes only keys of
the shapes modreg writes, never a stray (verify reports those for a person to remove), and
no object at all while a record cannot be read.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modreg._content import MANIFEST_FILE, FileEntry
from modreg._process import alive
from modreg.errors import IntegrityError, ModregError, StoreError
from modreg.registry import _index, _yanks
from modreg.registry._deliver import hash_key
from modreg.registry._index import IndexEntry
from modreg.registry._keys import (
    DEPS,
    GC_LOCK,
    INDEX_LOG,
    INDEX_SNAPSHOT,
    INFLIGHT,
    LEGACY_INDEX,
    LOCKS,
    MARKER,
    SIGNATURES,
    SNAPSHOT_MAX,
    dependent_key,
    is_inflight_key,
    object_key,
    parse_dependent_key,
    parse_object_key,
    parse_record_key,
    parse_signature_key,
    parse_snapshot_key,
    record_key,
    yank_key,
    yanked_in,
)
from modreg.registry._protocol import GC_LOCK_STALE, gc_lock, inflight, put_object, version_of
from modreg.registry._records import RECORD_LIMIT, SIGNATURE_LIMIT, VersionRecord, parse_record
from modreg.registry._yanks import YankState

if TYPE_CHECKING:
    from modreg.registry import Registry
    from modreg.store import Store

__all__ = ["ObjectProblem", "RepairReport", "VerifyReport", "gc", "repair", "verify"]

INFLIGHT_STALE = 86400.0  # a publish marker older than a day belongs to a publish that died
FOLD_GRACE = 3600.0  # folded index keys are kept this long after the snapshot that folds them
_HEX = re.compile(rb"[0-9a-f]{64}")


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
    scan = _Scan(report)
    for key in store.list(""):
        _classify(registry, key, scan)
    entries = []
    for (name, version), kinds in sorted(scan.versions.items()):
        if "json" not in kinds:
            report.add(yank_key(name, version), "yank marker without a record: remove it")
            continue
        report.records += 1
        yanked = _yanks.read_state(store, name, version) if yanked_in(kinds)[0] else None
        entry = _check_version(registry, name, version, yanked, scan)
        if entry is not None:
            entries.append(entry)
    _check_claims(registry, scan)
    _write_rebuilt_index(store, entries, bound, report)
    return report


@dataclass
class _Scan:
    """What one pass over every key of the registry found."""

    report: VerifyReport
    intact: dict[str, FileEntry] = field(default_factory=dict)
    versions: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # index and deps keys with the versions they name (checked once the records are listed)
    claims: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    dependents: list[tuple[str, tuple[str, str]]] = field(default_factory=list)
    # reverse-dependency keys the checked manifests call for, and the versions checked
    required: set[str] = field(default_factory=set)
    manifests: set[tuple[str, str]] = field(default_factory=set)


def _classify(registry: Registry, key: str, scan: _Scan) -> None:

    report = scan.report
    if key.startswith("objects/"):
        _check_object(registry, key, scan)
    elif key.startswith("records/"):
        parsed = parse_record_key(key)
        if parsed is None or version_of(parsed[1]) is None:
            report.add(key, "stray entry among the records (not NAME/VERSION.json): remove it")
            return
        scan.versions.setdefault((parsed[0], parsed[1]), set()).add(parsed[2])
    elif key.startswith(_BOOKKEEPING):
        check = next(c for prefix, c in _BOOKKEEPING_CHECKS.items() if key.startswith(prefix))
        problem = check(registry, key, scan)
        if problem is not None:
            report.add(key, problem)
    elif key != MARKER:
        report.add(key, "stray entry in the registry: remove it")


def _check_object(registry: Registry, key: str, scan: _Scan) -> None:
    report = scan.report
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
        scan.intact[sha256] = found
    else:
        report.add(f"object sha256:{sha256}", f"damaged (content hashes to {found.sha256[:12]})")


# -- the bookkeeping keys: each checker returns the problem of one key, or None -----------------
def _check_log_key(registry: Registry, key: str, scan: _Scan) -> str | None:
    if _index.log_key_time(key) is None:
        return (
            "stray entry in the index log (not index/log/<UTC time>-<12 hex>.json): remove it "
            "(readers skip it)"
        )
    entries = _index.read_log_key(registry.store, key)
    if entries is None:
        return (
            f"unreadable index log entry (over {_index.ENTRY_LIMIT} bytes, or not a file): "
            "remove it (readers skip it)"
        )
    if not entries:
        return "index log key holds no index entry: remove it (readers skip it)"
    scan.claims.append((key, [(e.name, e.version) for e in entries]))
    return None


def _check_snapshot_key(registry: Registry, key: str, scan: _Scan) -> str | None:
    if parse_snapshot_key(key) is None:
        return (
            "stray entry among the index snapshots (not index/snapshot/<12 digits>.json): "
            "remove it (readers ignore it)"
        )
    snapshot = _index.read_snapshot(registry.store, key)
    if snapshot is None:
        return (
            f"damaged index snapshot (over {_index.SNAPSHOT_LIMIT} bytes, not a file, or not "
            "JSON with 'through' and 'entries'): remove it (readers skip it)"
        )
    scan.claims.append((key, [(e.name, e.version) for e in snapshot.entries]))
    return None


def _check_dependent_key(registry: Registry, key: str, scan: _Scan) -> str | None:
    parsed = parse_dependent_key(key)
    if parsed is None:
        return (
            "stray entry among the reverse dependencies (not deps/<ns+dep>/<ns+name>@<version>): "
            "remove it (readers skip it)"
        )
    scan.claims.append((key, [parsed[1:]]))
    scan.dependents.append((key, parsed[1:]))
    return None


def _check_signature_key(registry: Registry, key: str, scan: _Scan) -> str | None:

    parsed = parse_signature_key(key)
    if parsed is None:
        return (
            "stray entry among the signatures (not signatures/<ns+name>/<version>/<hex "
            "signer>.json): remove it"
        )
    name, version, _ = parsed
    if "json" not in scan.versions.get((name, version), set()):  # records/ is listed by now
        try:  # or committed since
            published = registry.store.head(record_key(name, version)) is not None
        except IntegrityError:  # there, but not a file: reported as a damaged record
            published = True
        if not published:
            return f"signature of {name}@{version}, which is not published: remove it"
    return _file_problem(registry, key, SIGNATURE_LIMIT)


def _check_inflight_key(registry: Registry, key: str, scan: _Scan) -> str | None:
    if not is_inflight_key(key):
        return (
            "stray entry among the in-flight markers (not inflight/<32 hex>.json): remove it "
            "(gc ignores it)"
        )
    return _file_problem(registry, key, RECORD_LIMIT)


def _check_lock_key(registry: Registry, key: str, scan: _Scan) -> str | None:
    if key != GC_LOCK:
        return f"stray entry among the locks (only {GC_LOCK} belongs there): remove it"
    return _file_problem(registry, key, RECORD_LIMIT)


def _check_legacy_index(registry: Registry, key: str, scan: _Scan) -> str | None:
    if key != LEGACY_INDEX:
        return "stray entry in the registry: remove it"
    return _file_problem(registry, key, _index.SNAPSHOT_LIMIT)


def _check_other_index_key(registry: Registry, key: str, scan: _Scan) -> str | None:
    return (
        f"stray entry in the index (only {INDEX_LOG} and {INDEX_SNAPSHOT} belong there): remove it"
    )


def _file_problem(registry: Registry, key: str, limit: int) -> str | None:
    """What is wrong with ``key`` as a small regular file, or None if nothing is."""
    try:
        info = registry.store.head(key)
    except IntegrityError as exc:  # a FIFO, a link, a folder
        return f"{exc}: remove it"
    if info is not None and info.size > limit:
        return f"{info.size} bytes, over the limit of {limit}: remove it"
    return None


_BOOKKEEPING_CHECKS = {  # the longest prefix first: "index/log/" before "index/"
    INDEX_LOG: _check_log_key,
    INDEX_SNAPSHOT: _check_snapshot_key,
    "index/": _check_other_index_key,
    LEGACY_INDEX: _check_legacy_index,
    DEPS: _check_dependent_key,
    SIGNATURES: _check_signature_key,
    INFLIGHT: _check_inflight_key,
    LOCKS: _check_lock_key,
}
_BOOKKEEPING = tuple(_BOOKKEEPING_CHECKS)


def _check_claims(registry: Registry, scan: _Scan) -> None:
    """Bookkeeping keys that name a version must name a published one.

    A reverse-dependency key must also be called for by its version's manifest (when the
    manifest could be checked).
    """
    for key, ref in scan.dependents:
        if ref in scan.manifests and key not in scan.required:
            scan.report.add(
                key,
                f"{ref[0]}@{ref[1]} does not require what this reverse-dependency key says: "
                "remove it",
            )
    for key, refs in scan.claims:  # listed before records/, so committed before it was listed
        missing = sorted(
            {f"{n}@{v}" for n, v in refs if "json" not in scan.versions.get((n, v), ())}
        )
        if missing:
            shown = ", ".join(missing[:3]) + (
                f" and {len(missing) - 3} more" if missing[3:] else ""
            )
            scan.report.add(
                key, f"names {shown}, which is not published: it is forged or stale; remove it"
            )


def _write_rebuilt_index(
    store: Store, entries: list[IndexEntry], bound: str, report: VerifyReport
) -> None:
    """Create the rebuilt snapshot above every well-formed one, so readers read it next."""
    sequence = _index.next_sequence(store)
    try:
        while sequence <= SNAPSHOT_MAX:
            if _index.write_snapshot(store, entries, through=bound, sequence=sequence):
                return
            sequence += 1  # a racing writer, or a stray in the way
    except StoreError as exc:  # e.g. a file where the index/snapshot/ folder belongs
        report.add(
            INDEX_SNAPSHOT,
            f"the rebuilt index cannot be written ({exc}): remove what is in its way",
        )
        return
    top = _index.snapshot_keys(store)[-1][1]
    report.add(
        top,
        f"takes the last snapshot number ({SNAPSHOT_MAX}), so no rebuilt index can be written "
        "above it: remove it, then run 'modreg verify' again",
    )


def _check_version(
    registry: Registry, name: str, version: str, yanked: YankState | None, scan: _Scan
) -> IndexEntry | None:
    ref, report, intact = f"{name}@{version}", scan.report, scan.intact
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
        _check_manifest(registry, record, scan)
    if yanked is None:
        return IndexEntry(name, version, record.digest, record.kind, record.summary, step=0)
    state = (yanked.yanked, yanked.reason, yanked.step)
    return IndexEntry(name, version, record.digest, record.kind, record.summary, *state)


def _check_manifest(registry: Registry, record: VersionRecord, scan: _Scan) -> None:
    """The record's name, version, kind and summary must be the manifest's own."""
    from modreg.spec.manifest import parse_manifest

    report = scan.report
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
    scan.manifests.add((record.name, record.version))
    for dependency in sorted(manifest.requires or {}):  # rebuild the reverse-dependency keys
        key = dependent_key(dependency, record.name, record.version)
        scan.required.add(key)
        try:
            registry.store.put_if_absent(key, b"")
        except StoreError as exc:  # e.g. a stray file where the deps/<dep>/ folder belongs
            report.add(key, f"cannot be rebuilt ({exc}): remove the stray entry in its way")


@dataclass
class RepairReport:
    """What ``repair`` restored, and what it could not."""

    repaired: list[str] = field(default_factory=list)
    problems: list[ObjectProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _object_intact(store: Store, entry: FileEntry) -> bool:
    try:
        found = hash_key(store, object_key(entry.sha256))
    except IntegrityError:  # a folder, a FIFO or a link where the object belongs
        return False
    return found is not None and found.sha256 == entry.sha256 and found.size == entry.size


def repair(registry: Registry, source: Registry) -> RepairReport:
    """Put back every damaged or missing object a record names, fetched from ``source``.

    The bytes are fetched by digest and checked against *this* registry's record as they
    arrive (``source`` is never trusted beyond that), then written through the write
    protocol (an in-flight marker, the gc lock respected). Records are not repaired: a
    damaged one is reported, for a re-publish from the module's folder.
    """
    store = registry.store
    report = RepairReport()
    fixed: set[str] = set()
    for ref in registry.refs():
        name, _, version = ref.partition("@")
        try:
            data = store.get(record_key(name, version), limit=RECORD_LIMIT) or b""
            record = parse_record(data, ref)
        except IntegrityError as exc:
            report.problems.append(ObjectProblem(f"record {ref}", str(exc)))
            continue
        for entry in record.files:
            if entry.sha256 in fixed or _object_intact(store, entry):
                continue
            what = f"object sha256:{entry.sha256[:12]} ({entry.path} of {ref})"
            try:
                _restore_object(store, source, entry)
            except ModregError as exc:
                report.problems.append(
                    ObjectProblem(what, f"not restored from {source.location}: {exc}")
                )
                continue
            fixed.add(entry.sha256)
            report.repaired.append(f"{what} from {source.location}")
    return report


def _restore_object(store: Store, source: Registry, entry: FileEntry) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="modreg-repair-") as tmp,
        inflight(store, [entry.sha256]),
    ):
        staged = Path(tmp) / entry.sha256
        source.deliver(entry, staged)  # every byte checked against this registry's record
        put_object(store, staged, entry)


def gc(registry: Registry, *, min_age: float) -> tuple[int, int]:
    """Remove leftovers (see the module docstring); returns (leftovers, orphan objects)."""
    store = registry.store
    leftovers, _ = store.clean_temporaries(min_age=min_age)
    leftovers += _clean_partial_pulls(registry)
    with gc_lock(store) as started:
        protected, stale = _inflight_objects(registry)
        leftovers += stale
        referenced = _referenced_objects(registry)
        removed = 0
        if referenced is not None:
            removed = _remove_orphans(registry, referenced | protected, min_age, started)
        leftovers += _fold_index(registry)
    return leftovers, removed


def _remove_orphans(registry: Registry, keep: set[str], min_age: float, started: float) -> int:
    store = registry.store
    removed = 0
    now = time.time()
    for key in list(store.list("objects/sha256/")):
        sha256 = parse_object_key(key)
        if sha256 is None or sha256 in keep:
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
    return removed


def _inflight_objects(registry: Registry) -> tuple[set[str], int]:
    """Objects the in-flight markers protect, and how many stale markers were removed.

    Only keys of the shape a publish writes count; another key there (or one that is not a
    small file) is no publish's marker, so gc neither honours nor removes it (verify reports it).
    """
    store = registry.store
    protected: set[str] = set()
    stale = 0
    for key in list(store.list(INFLIGHT)):
        if not is_inflight_key(key):
            continue
        try:
            info = store.head(key)
            data = store.get(key, limit=RECORD_LIMIT)
        except IntegrityError:
            continue
        if info is None or data is None:
            continue
        if time.time() - info.modified > INFLIGHT_STALE:
            store.delete(key)
            stale += 1
            continue
        protected |= {m.decode() for m in _HEX.findall(data)}  # whatever it says, keep
    return protected, stale


def _referenced_objects(registry: Registry) -> set[str] | None:
    """sha256 of every object any record names (a damaged record protects what it mentions).

    None if a record cannot be read at all (over the limit, not a file): what it names is
    unknown, so no object may be called unreferenced until verify's report is dealt with.
    """
    store = registry.store
    referenced: set[str] = set()
    for key in store.list("records/"):
        parsed = parse_record_key(key)
        if parsed is None or parsed[2] != "json":
            continue
        try:
            data = store.get(key, limit=RECORD_LIMIT) or b""
        except IntegrityError:
            return None
        try:
            record = parse_record(data, f"{parsed[0]}@{parsed[1]}")
            referenced |= {e.sha256 for e in record.files}
        except IntegrityError:
            referenced |= {m.decode() for m in _HEX.findall(data)}
    return referenced


def _fold_index(registry: Registry) -> int:
    """Delete index keys the current snapshot has folded, once no reader can still need them.

    A key goes only when the snapshot readers read says everything the key says, so neither a
    stray snapshot nor a damaged one can make gc drop a real entry. The log key the snapshot
    names as ``through`` stays: readers trust ``through`` only while it exists.
    """
    store = registry.store
    current = _index.current_snapshot(store)
    info = store.head(current.key) if current is not None else None
    if current is None or info is None or time.time() - info.modified < FOLD_GRACE:
        return 0
    rows: dict[tuple[str, str], IndexEntry] = {(e.name, e.version): e for e in current.entries}
    removed = 0
    for sequence, key in _index.snapshot_keys(store):
        older = _index.read_snapshot(store, key) if sequence < current.sequence else None
        if older is not None and _index.covers(rows, older.entries):
            store.delete(key)
            removed += 1
    for key in _index.log_keys(store):
        if key >= current.through:
            break
        entries = _index.read_log_key(store, key)
        if entries and _index.covers(rows, entries):
            store.delete(key)
            removed += 1
    return removed


def _clean_partial_pulls(registry: Registry) -> int:
    """Staging folders of pulls that were killed (``.NAME.PID-ID.partial`` in the cache)."""

    cache = registry.settings.cache
    removed = 0
    if not cache.is_dir():
        return 0
    for partial in list(cache.glob("*/.*.partial")) + list(cache.glob("*/.*.trash")):
        pid = partial.name.rsplit(".", 2)[-2].split("-", 1)[0]
        if partial.name.endswith(".partial") and pid.isdigit() and alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(partial)
            removed += 1
    return removed
