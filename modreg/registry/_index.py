"""The registry index: what ``modreg list`` reads, built from create-only keys.

An object store cannot append, so the index is a log plus snapshots (both only ever created):

- each publish, yank or un-yank creates one log key ``index/log/<UTC time>-<random>.json``
  holding its entry; keys sort by time;
- a snapshot ``index/snapshot/<seq>.json`` (twelve digits) holds every entry folded so far
  and ``through``, the last log key it folded. A reader reads the newest snapshot that
  parses and the log keys after ``through`` (one listing), so it never reads more than a
  bounded tail;
- when a reader finds more than :data:`COMPACT_AFTER` log keys past the snapshot, it creates
  the next snapshot (losing that race to another reader is fine: both fold the same entries).
  Only log keys older than :data:`CLOCK_SKEW` are folded, so a writer whose clock runs a
  little behind still lands after ``through``.

The index is a cache: records are the truth, and ``verify`` rebuilds the snapshot from them.
A rebuild folds only log keys written before it started, so a version committed while it
scanned stays visible through its log key.

Only keys of the exact shapes above count. A stray (a malformed name, a value over its
limit, a FIFO or folder, a body that does not parse) is skipped by readers and reported by
``verify``; it never becomes the newest snapshot, and a new snapshot's sequence is above
every well-formed snapshot key, damaged or not, so the rebuild is the one readers read.
``through`` is trusted only while that log key exists (:func:`log_tail`), and ``gc`` drops a
log key or older snapshot only when the snapshot it keeps says everything it says.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from modreg.errors import IntegrityError
from modreg.registry._keys import (
    INDEX_LOG,
    INDEX_SNAPSHOT,
    LEGACY_INDEX,
    SNAPSHOT_MAX,
    parse_log_key,
    parse_snapshot_key,
    snapshot_key,
)
from modreg.store import Store

__all__ = [
    "IndexEntry",
    "Snapshot",
    "append_entry",
    "covers",
    "current_snapshot",
    "log_key_time",
    "log_keys",
    "log_tail",
    "next_sequence",
    "read_index",
    "read_log_key",
    "read_snapshot",
    "snapshot_bound",
    "snapshot_keys",
    "write_snapshot",
]

COMPACT_AFTER = 256
CLOCK_SKEW = 300.0  # seconds: how far behind a writer's clock may run
ENTRY_LIMIT = 1 << 16
SNAPSHOT_LIMIT = 1 << 30
_STAMP = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True)
class IndexEntry:
    """One entry of the registry index: a published, yanked or un-yanked version.

    ``step`` is the step of the version's yank state the entry reports (see
    ``modreg/registry/_keys.py``); None, in entries written before steps, means 1 when
    ``yanked`` and 0 (never yanked) otherwise. Folding keeps the highest step, so the order
    in which entries are read never matters.
    """

    name: str
    version: str
    digest: str
    kind: str
    summary: str
    yanked: bool = False
    reason: str = ""
    step: int | None = None

    @property
    def yank_step(self) -> int:
        return self.step if self.step is not None else int(self.yanked)

    @classmethod
    def from_json(cls, raw: Any) -> IndexEntry | None:
        """The entry in ``raw``, or None if it is not a well-formed entry (skipped, not fatal)."""
        texts = ("name", "version", "digest", "kind", "summary")
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in texts):
            return None
        yanked, reason, step = raw.get("yanked", False), raw.get("reason", ""), raw.get("step")
        if not isinstance(yanked, bool) or not isinstance(reason, str):
            return None
        if step is not None and (type(step) is not int or step < 0):
            return None
        name, version, digest, kind, summary = (raw[k] for k in texts)
        return cls(name, version, digest, kind, summary, yanked, reason, step)

    def same_version(self, other: IndexEntry) -> bool:
        """Whether both entries describe the same published bytes (yank state aside)."""
        fields = ("name", "version", "digest", "kind", "summary")
        return all(getattr(self, f) == getattr(other, f) for f in fields)


def _log_key(now: float) -> str:
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime(_STAMP)
    return f"{INDEX_LOG}{stamp}-{uuid.uuid4().hex[:12]}.json"


def log_key_time(key: str) -> float | None:
    """When the log key ``key`` was written, or None if it is not a well-formed log key."""
    stamp = parse_log_key(key)
    if stamp is None:
        return None
    try:
        parsed = dt.datetime.strptime(stamp, _STAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return parsed.timestamp()


def log_keys(store: Store, *, start_after: str = "") -> list[str]:
    """The well-formed log keys after ``start_after``, in order (strays are left out)."""
    keys = store.list(INDEX_LOG, start_after=start_after)
    return [k for k in keys if log_key_time(k) is not None]


def append_entry(store: Store, entry: IndexEntry) -> None:
    """Add ``entry`` to the index (one new log key; concurrent writers never collide)."""
    data = json.dumps(asdict(entry), separators=(",", ":")).encode()
    while not store.put_if_absent(_log_key(time.time()), data):
        pass  # a random suffix collided: draw another


@dataclass(frozen=True)
class Snapshot:
    """A snapshot that parses: its key, sequence, entries and the last log key it folded."""

    key: str
    sequence: int
    entries: list[IndexEntry]
    through: str


def snapshot_keys(store: Store) -> list[tuple[int, str]]:
    """(sequence, key) of every well-formed snapshot key, oldest first (strays left out)."""
    found = [(parse_snapshot_key(k), k) for k in store.list(INDEX_SNAPSHOT)]
    return [(sequence, key) for sequence, key in found if sequence is not None]


def read_snapshot(store: Store, key: str) -> Snapshot | None:
    """The snapshot at ``key``, or None if it is absent, unreadable, oversized or garbage."""
    sequence = parse_snapshot_key(key)
    if sequence is None:
        return None
    try:
        raw = json.loads(store.get(key, limit=SNAPSHOT_LIMIT) or b"")
        through, rows = raw["through"], raw["entries"]
    except (IntegrityError, ValueError, KeyError, TypeError, RecursionError):
        return None  # IntegrityError: over the limit, or not a file (a FIFO, a folder)
    if not isinstance(through, str) or (through and log_key_time(through) is None):
        return None
    if not isinstance(rows, list):
        return None
    entries = [e for e in map(IndexEntry.from_json, rows) if e is not None]
    return Snapshot(key, sequence, entries, through)


def current_snapshot(store: Store) -> Snapshot | None:
    """The snapshot readers read (see :func:`_chosen`)."""
    return _chosen(store)[0]


def _chosen(store: Store) -> tuple[Snapshot | None, list[str]]:
    """The snapshot to read and the log keys to read after it.

    The newest well-formed snapshot that parses and whose ``through`` is trusted (see
    :func:`log_tail`); failing that, the newest that parses, with the whole log: a snapshot
    whose ``through`` names no log key here (a stray claiming to have folded everything)
    never hides an older snapshot, nor the log.
    """
    untrusted = None
    for _, key in reversed(snapshot_keys(store)):
        found = read_snapshot(store, key)
        if found is None:
            continue
        tail = log_tail(store, found.through)
        if tail is not None:
            return found, tail
        untrusted = untrusted or found
    return untrusted, log_keys(store)


def next_sequence(store: Store) -> int:
    """The sequence a new snapshot takes: above every well-formed snapshot key, even damaged."""
    keys = snapshot_keys(store)
    return keys[-1][0] + 1 if keys else 1


def _fold(rows: dict[tuple[str, str], IndexEntry], entries: Iterable[IndexEntry]) -> None:
    for entry in entries:
        key = (entry.name, entry.version)
        known = rows.get(key)
        if known is None:
            rows[key] = entry
        elif entry.yank_step > known.yank_step:
            step = entry.yank_step
            rows[key] = replace(known, yanked=entry.yanked, reason=entry.reason, step=step)


def covers(rows: dict[tuple[str, str], IndexEntry], entries: Iterable[IndexEntry]) -> bool:
    """Whether ``rows`` already says everything ``entries`` say (so they may be dropped)."""
    for entry in entries:
        known = rows.get((entry.name, entry.version))
        if known is None or not known.same_version(entry) or entry.yank_step > known.yank_step:
            return False
    return True


def _parse_lines(data: bytes) -> list[IndexEntry]:
    found = []
    for line in data.splitlines():
        try:
            entry = IndexEntry.from_json(json.loads(line))
        except (ValueError, RecursionError):  # a torn line of a crashed writer
            continue
        if entry is not None:
            found.append(entry)
    return found


def _legacy(store: Store) -> list[IndexEntry]:
    try:
        data = store.get(LEGACY_INDEX, limit=SNAPSHOT_LIMIT) if store.head(LEGACY_INDEX) else None
    except IntegrityError:  # over the limit, or not a file: verify reports it
        return []
    return _parse_lines(data) if data else []


def read_log_key(store: Store, key: str) -> list[IndexEntry] | None:
    """The entries of one log key; None if it is unreadable (over the limit, not a file)."""
    try:
        data = store.get(key, limit=ENTRY_LIMIT)
    except IntegrityError:
        return None
    return _parse_lines(data) if data else []


def _read_entries(store: Store, keys: list[str]) -> list[IndexEntry]:
    def one(key: str) -> list[IndexEntry]:
        return read_log_key(store, key) or []

    if not store.remote or len(keys) < 4:
        return [e for key in keys for e in one(key)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        return [e for found in pool.map(one, keys) for e in found]


def log_tail(store: Store, through: str) -> list[str] | None:
    """The log keys after ``through``; None if ``through`` names no log key here.

    ``through`` is trusted only while that log key exists (gc keeps it): a snapshot whose
    ``through`` names no key here (a stray, or one copied from elsewhere) could hide the
    whole log. Listing from ``through`` less its last character finds ``through`` itself
    first, if present, without a second request: no well-formed log key sorts between them.
    """
    if not through:
        return log_keys(store)
    keys = log_keys(store, start_after=through[:-1])
    return keys[1:] if keys and keys[0] == through else None


def read_index(store: Store) -> list[IndexEntry]:
    """Every indexed version, yank state folded in (compacting the log when it has grown)."""
    snapshot, tail = _chosen(store)
    entries = snapshot.entries if snapshot is not None else _legacy(store)
    rows: dict[tuple[str, str], IndexEntry] = {}
    _fold(rows, entries)
    _fold(rows, _read_entries(store, tail))
    if len(tail) > COMPACT_AFTER:
        folded = _foldable(tail, time.time())
        sequence = next_sequence(store)
        if folded and sequence <= SNAPSHOT_MAX:
            compact: dict[tuple[str, str], IndexEntry] = {}
            _fold(compact, entries)
            _fold(compact, _read_entries(store, tail[: tail.index(folded) + 1]))
            write_snapshot(store, list(compact.values()), through=folded, sequence=sequence)
    return list(rows.values())


def _foldable(keys: list[str], now: float) -> str | None:
    """The last key of ``keys`` old enough that no slow clock can still write before it."""
    last = None
    for key in keys:
        written = log_key_time(key)
        if written is None or written > now - CLOCK_SKEW:
            break
        last = key
    return last


def snapshot_bound(store: Store, started: float) -> str:
    """What a rebuild begun at ``started`` may claim to have folded: older log keys only.

    It is read from the log itself, never from a snapshot, so a stray snapshot's ``through``
    cannot make the rebuild skip log keys.
    """
    return _foldable(log_keys(store), started) or ""


def write_snapshot(store: Store, entries: list[IndexEntry], *, through: str, sequence: int) -> bool:
    """Create snapshot ``sequence``; False if another writer (or a stray) holds that key."""
    ordered = sorted(entries, key=lambda e: (e.name, e.version))
    data = json.dumps(
        {"through": through, "entries": [asdict(e) for e in ordered]}, separators=(",", ":")
    ).encode()
    return store.put_if_absent(snapshot_key(sequence), data)
