"""The registry index: what ``modreg list`` reads, built from create-only keys.

An object store cannot append, so the index is a log plus snapshots (both only ever created):

- each publish or yank creates one log key ``index/log/<UTC time>-<random>.json`` holding its
  entry; keys sort by time;
- a snapshot ``index/snapshot/<seq>.json`` holds every entry folded so far and ``through``,
  the last log key it folded. A reader reads the newest snapshot and the log keys after
  ``through`` (one listing), so it never reads more than a bounded tail;
- when a reader finds more than :data:`COMPACT_AFTER` log keys past the snapshot, it creates
  the next snapshot (losing that race to another reader is fine: both fold the same entries).
  Only log keys older than :data:`CLOCK_SKEW` are folded, so a writer whose clock runs a
  little behind still lands after ``through``.

The index is a cache: records are the truth, and ``verify`` rebuilds the snapshot from them.
A rebuild folds only log keys written before it started, so a version committed while it
scanned stays visible through its log key.
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

from modreg.store import Store
from modreg.store._keys import INDEX_LOG, INDEX_SNAPSHOT, LEGACY_INDEX

__all__ = [
    "IndexEntry",
    "append_entry",
    "latest_snapshot",
    "read_index",
    "snapshot_bound",
    "write_snapshot",
]

COMPACT_AFTER = 256
CLOCK_SKEW = 300.0  # seconds: how far behind a writer's clock may run
ENTRY_LIMIT = 1 << 16
SNAPSHOT_LIMIT = 1 << 30


@dataclass(frozen=True)
class IndexEntry:
    """One entry of the registry index: a published or yanked version."""

    name: str
    version: str
    digest: str
    kind: str
    summary: str
    yanked: bool = False

    @classmethod
    def from_json(cls, raw: Any) -> IndexEntry | None:
        """The entry in ``raw``, or None if it is not a well-formed entry (skipped, not fatal)."""
        texts = ("name", "version", "digest", "kind", "summary")
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in texts):
            return None
        yanked = raw.get("yanked", False)
        if not isinstance(yanked, bool):
            return None
        name, version, digest, kind, summary = (raw[k] for k in texts)
        return cls(name, version, digest, kind, summary, yanked)


def _log_key(now: float) -> str:
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{INDEX_LOG}{stamp}-{uuid.uuid4().hex[:12]}.json"


def _key_time(key: str) -> float | None:
    stamp = key[len(INDEX_LOG) :].split("-", 1)[0]
    try:
        parsed = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return parsed.timestamp()


def append_entry(store: Store, entry: IndexEntry) -> None:
    """Add ``entry`` to the index (one new log key; concurrent writers never collide)."""
    data = json.dumps(asdict(entry), separators=(",", ":")).encode()
    while not store.put_if_absent(_log_key(time.time()), data):
        pass  # a random suffix collided: draw another


def latest_snapshot(store: Store) -> tuple[str | None, int]:
    """The newest snapshot key (None if there is none) and its sequence number."""
    newest = None
    for key in store.list(INDEX_SNAPSHOT):
        newest = key
    if newest is None:
        return None, 0
    try:
        return newest, int(newest[len(INDEX_SNAPSHOT) :].removesuffix(".json"))
    except ValueError:
        return newest, 0


def _fold(rows: dict[tuple[str, str], IndexEntry], entries: Iterable[IndexEntry]) -> None:
    for entry in entries:
        key = (entry.name, entry.version)
        known = rows.get(key)
        if known is None:
            rows[key] = entry
        elif entry.yanked and not known.yanked:
            rows[key] = replace(known, yanked=True)


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


def _read_snapshot(store: Store, key: str | None) -> tuple[list[IndexEntry], str]:
    if key is None:
        legacy = store.get(LEGACY_INDEX, limit=SNAPSHOT_LIMIT) if store.head(LEGACY_INDEX) else None
        return (_parse_lines(legacy) if legacy else []), ""
    data = store.get(key, limit=SNAPSHOT_LIMIT)
    try:
        raw = json.loads(data or b"{}")
        through = raw["through"]
        rows = raw["entries"]
        if not isinstance(through, str) or not isinstance(rows, list):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        return [], ""  # a damaged snapshot: the log still holds every entry since
    return [e for e in map(IndexEntry.from_json, rows) if e is not None], through


def _read_entries(store: Store, keys: list[str]) -> list[IndexEntry]:
    def one(key: str) -> list[IndexEntry]:
        data = store.get(key, limit=ENTRY_LIMIT)
        return _parse_lines(data) if data else []

    if store.local_root is not None or len(keys) < 4:
        return [e for key in keys for e in one(key)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        return [e for found in pool.map(one, keys) for e in found]


def read_index(store: Store) -> list[IndexEntry]:
    """Every indexed version, yank state folded in (compacting the log when it has grown)."""
    snapshot, sequence = latest_snapshot(store)
    entries, through = _read_snapshot(store, snapshot)
    tail = list(store.list(INDEX_LOG, start_after=through))
    rows: dict[tuple[str, str], IndexEntry] = {}
    _fold(rows, entries)
    _fold(rows, _read_entries(store, tail))
    if len(tail) > COMPACT_AFTER:
        folded = _foldable(tail, time.time())
        if folded:
            compact: dict[tuple[str, str], IndexEntry] = {}
            _fold(compact, entries)
            _fold(compact, _read_entries(store, tail[: tail.index(folded) + 1]))
            write_snapshot(store, list(compact.values()), through=folded, sequence=sequence + 1)
    return list(rows.values())


def _foldable(keys: list[str], now: float) -> str | None:
    """The last key of ``keys`` old enough that no slow clock can still write before it."""
    last = None
    for key in keys:
        written = _key_time(key)
        if written is None or written > now - CLOCK_SKEW:
            break
        last = key
    return last


def snapshot_bound(store: Store, started: float) -> str:
    """What a rebuild begun at ``started`` may claim to have folded: older log keys only."""
    snapshot, _ = latest_snapshot(store)
    _, through = _read_snapshot(store, snapshot)
    tail = list(store.list(INDEX_LOG, start_after=through))
    return _foldable(tail, started) or through


def write_snapshot(store: Store, entries: list[IndexEntry], *, through: str, sequence: int) -> bool:
    """Create snapshot ``sequence``; False if another writer created it first."""
    ordered = sorted(entries, key=lambda e: (e.name, e.version))
    data = json.dumps(
        {"through": through, "entries": [asdict(e) for e in ordered]}, separators=(",", ":")
    ).encode()
    return store.put_if_absent(f"{INDEX_SNAPSHOT}{sequence:012d}.json", data)
