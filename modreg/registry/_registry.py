"""Publish, resolve, pull, copy, list, show and yank modules over any :class:`Store`.

The rules (docs/architecture.md, registry semantics): a published ``name@version`` is
immutable; publishing the same bytes again is a no-op, different bytes are refused; yanked
versions drop out of ranges but resolve by exact pin; a yanked version is never reused; every
read re-verifies digest and size. They hold on every backend because they are built here, on
the store's exclusive create, and not inside a backend.

A publish runs in this order, so a crash at any point leaves no visible broken version:

1. the folder is copied into a private staging folder, and exactly those bytes are
   validated, hashed and stored (an editor saving mid-publish cannot slip bytes past the
   checks);
2. an in-flight marker names the objects the publish relies on, and the publish waits while
   a ``gc`` holds its lock, so gc never deletes an object a publish is about to reference;
3. objects are created (content-addressed, checksummed);
4. the version record is created exclusively: the commit point. Of racing publishers exactly
   one wins; a loser with the same bytes is a no-op, with other bytes ``VersionExists``;
5. the index entry and reverse-dependency keys are created, the marker removed.

Example:
    >>> import modreg, tempfile
    >>> registry = modreg.Registry(tempfile.mkdtemp())
    >>> registry.publish("modules/gravity").ref            # doctest: +SKIP
    'physics/gravity@1.0.0'
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import datetime as dt
import functools
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from modreg._config import Settings
from modreg._content import MANIFEST_FILE, FileEntry, bytes_match
from modreg.errors import (
    IntegrityError,
    InvalidModule,
    ModuleNotFound,
    NotARegistry,
    StoreError,
    VersionExists,
)
from modreg.module import Module
from modreg.registry import _index, _protocol, _yanks
from modreg.registry._deliver import deliver
from modreg.registry._folders import (
    copy_regular,
    install,
    occupied,
    regular_files,
    validated,
    verified_copy,
)
from modreg.registry._index import IndexEntry
from modreg.registry._keys import (
    MARKER,
    dependents_prefix,
    object_key,
    parse_dependent_key,
    parse_record_key,
    record_key,
    record_prefix,
    signature_key,
    signature_prefix,
    yanked_in,
)
from modreg.registry._protocol import ORPHAN_AGE_SECONDS, version_of
from modreg.registry._records import (
    RECORD_LIMIT,
    SIGNATURE_LIMIT,
    VersionRecord,
    check_identity,
    parse_record,
)
from modreg.registry._remote_cache import RemoteCache
from modreg.registry._yanks import YankState
from modreg.spec.names import ModuleRef, parse_name, parse_version
from modreg.store import Store, open_store

if TYPE_CHECKING:
    from modreg.registry._maintenance import RepairReport, VerifyReport
    from modreg.spec.manifest import Manifest
    from modreg.trust import TrustPolicy

__all__ = ["ListEntry", "PublishResult", "Registry", "VersionRecord"]

_SIGNER = re.compile(r"[0-9a-f]{1,128}")
_KNOWN_PREFIXES = (
    MARKER,
    "objects/",
    "records/",
    "index/",
    "index.jsonl",
    "deps/",
    "signatures/",
    "inflight/",
    "locks/",
)


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
    reasons: dict[str, str] = field(default_factory=dict)  # yanked version -> its reason


class Registry:
    """A module registry over a store (a local directory by default).

    Args:
        location: a directory, ``file://``, ``s3://bucket/prefix`` or ``memory://name`` URI, or
            a :class:`Store`; default ``$MODREG_REGISTRY``.
        offline: serve a remote registry from the local cache only (default
            ``$MODREG_OFFLINE``).
        trust: the keys every pulled module must be signed by (default
            ``$MODREG_TRUSTED_KEYS``; none: no policy). Enforced by :meth:`pull`, the one way
            a module's files reach a caller.
    """

    def __init__(
        self,
        location: str | Path | Store | None = None,
        *,
        offline: bool | None = None,
        settings: Settings | None = None,
        trust: TrustPolicy | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        if location is None:
            location = self.settings.registry
        self.store: Store = (
            open_store(str(location)) if isinstance(location, str | Path) else location
        )
        self.offline = self.settings.offline if offline is None else offline
        self._trust = trust
        self._cache = (
            RemoteCache(self.settings.store_cache, self.store, offline=self.offline)
            if self.store.remote
            else None
        )

    def __repr__(self) -> str:
        return f"Registry({self.store.location!r})"

    @property
    def location(self) -> str:
        return self.store.location

    @functools.cached_property
    def trust(self) -> TrustPolicy | None:
        """The trust policy pulls enforce (the key files are read on first use).

        Raises:
            SignatureError, ConfigError: a key file cannot be used.
        """
        if self._trust is not None or self.settings.trusted_keys is None:
            return self._trust
        from modreg.trust import TrustPolicy

        return TrustPolicy.load(self.settings.trusted_keys)

    # -- the registry marker -----------------------------------------------------------------
    def claim(self, *, create: bool = True) -> None:
        """Make sure the location is a registry before anything is written there.

        An empty location becomes one (``create``); a registry made before the marker existed
        is recognised by that layout's shape (registry keys only, and a version record that
        parses) and marked. Anything else is refused untouched: gc and verify never remove
        anything from a location that is not a marked registry.

        Raises:
            NotARegistry: the location holds other data, or (``create=False``) nothing.
            StoreError: the backend ignores exclusive creates (modreg cannot be safe there).
        """
        if not self._is_registry(create=create):
            self._mark()

    def _is_registry(self, *, create: bool) -> bool:
        """True if marked; False if it may become a registry; raises if it may not."""
        self._online("writing to the registry")
        if self.store.head(MARKER) is not None:
            return True
        keys = [key for _, key in zip(range(64), self.store.list(""), strict=False)]
        if MARKER in keys:  # another writer marked it since the head
            return True
        foreign = [k for k in keys if not k.startswith(_KNOWN_PREFIXES)]
        if foreign:
            raise NotARegistry(
                f"{self.location} is not a modreg registry: it holds {foreign[0]!r} and no "
                f"{MARKER}; give the path of a registry, or a new or empty location"
            )
        if not keys:
            if not create:
                raise NotARegistry(
                    f"no registry at {self.location}: check the path, or publish a module to "
                    "create one"
                )
            return False
        # Keys with registry names are not enough (a folder with an index.jsonl of its own):
        # a registry of the old layout holds version records, and one of them parses.
        records = (p for k in self.store.list("records/") if (p := parse_record_key(k)))
        for _, (name, version, kind) in zip(range(8), records, strict=False):
            with contextlib.suppress(IntegrityError):  # damaged, oversized, not a file
                data = self.store.get(record_key(name, version), limit=RECORD_LIMIT)
                if kind == "json" and data and parse_record(data, f"{name}@{version}"):
                    return False
        raise NotARegistry(
            f"{self.location} is not a modreg registry: it holds {keys[0]!r} but no {MARKER} "
            "and no version record that parses; give the path of a registry, or a new or "
            "empty location"
        )

    def _mark(self) -> None:
        # The id names this registry for caches, whatever URI it is reached by.
        marker = json.dumps({"format": 1, "created": _now(), "id": uuid.uuid4().hex}).encode()
        self.store.put_if_absent(MARKER, marker)
        if self.store.put_if_absent(MARKER, marker):
            raise StoreError(
                f"{self.location} accepted a second exclusive create of {MARKER}: the storage "
                "does not enforce conditional writes (If-None-Match: *), which modreg needs "
                "to keep versions immutable; use a server that supports them"
            )

    def _online(self, what: str) -> None:
        if self._cache is not None and self.offline:
            raise self._cache.offline_error(what)

    # -- publish -----------------------------------------------------------------------------
    def publish(self, directory: str | Path) -> PublishResult:
        """Validate a module directory and store it as an immutable version.

        Raises:
            InvalidModule, InvalidManifest (and subclasses), InvalidWeights: the directory is
                not a valid, safe module; nothing is stored.
            VersionExists: the version holds different bytes, or was yanked.
            NotARegistry: the registry location holds something else.
        """
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            # The registry check (and a remote client's start-up) overlaps the validation.
            marked = pool.submit(self._is_registry, create=True)
            with self._staged(Path(directory)) as staged:
                module = validated(staged, Path(directory))
                if module.kind == "hybrid":  # its parts' ports, units and digests, from here
                    from modreg._files import check_hybrid, registry_parts

                    check_hybrid(module.path, module.manifest, registry_parts(self))
                manifest = module.manifest
                if not marked.result():
                    self._mark()
                requires = list(manifest.requires or {})
                existing = self._existing(manifest.name, manifest.version, module.digest)
                if existing is not None:
                    self._restore(module, staged)  # an identical republish restores damage
                    record = self.resolve(f"{existing.name}@{existing.version}")
                    _protocol.complete(self.store, record, requires)  # what a failure left
                    return existing
                with _protocol.inflight(self.store, [e.sha256 for e in module.files]):
                    puts = [
                        pool.submit(_protocol.put_object, self.store, staged / e.path, e)
                        for e in module.files
                    ]
                    for put in puts:
                        put.result()
                    record = VersionRecord(
                        name=manifest.name,
                        version=manifest.version,
                        digest=module.digest,
                        kind=manifest.kind,
                        summary=manifest.summary,
                        files=module.files,
                        published=_now(),
                    )
                    winner = _protocol.commit(self.store, record)
                    if winner is not None:
                        if winner != record.to_json():  # another publisher won the race
                            return self._compare(
                                manifest.name, manifest.version, module.digest, winner
                            )
                        # Exactly our bytes: a retried request whose first try had landed,
                        # or an identical racer in the same second. Either way the version's
                        # index and dependency keys must exist.
                        _protocol.complete(self.store, record, requires)
                        return PublishResult(
                            manifest.name, manifest.version, module.digest, created=False
                        )
                    _protocol.after_commit(self.store, record, requires)
        return PublishResult(manifest.name, manifest.version, module.digest, created=True)

    @contextlib.contextmanager
    def _staged(self, directory: Path) -> Iterator[Path]:
        """A private copy of the module folder: the bytes that are validated are the ones stored."""
        from modreg._files import scan_module

        names = regular_files(directory)
        if names is None:
            scan_module(directory)  # raises the precise error for what does not belong there
            raise InvalidModule(f"{str(directory)!r} holds entries that are not regular files")
        staging = self.store.scratch_dir() or Path(tempfile.mkdtemp(prefix="modreg-stage-"))
        try:
            for name in names:
                copy_regular(directory / name, staging / name)
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _restore(self, module: Module, staged: Path) -> None:
        with _protocol.inflight(self.store, [e.sha256 for e in module.files]):
            for entry in module.files:
                _protocol.put_object(self.store, staged / entry.path, entry)

    def _existing(self, name: str, version: str, digest: str) -> PublishResult | None:
        # The store itself, never the cache: a writer must see what the registry holds now.
        data = self.store.get(record_key(name, version), limit=RECORD_LIMIT)
        return None if data is None else self._compare(name, version, digest, data)

    def _compare(self, name: str, version: str, digest: str, data: bytes) -> PublishResult:
        record = parse_record(data, f"{name}@{version}")
        if record.digest != digest:
            raise VersionExists(
                f"{name}@{version} is already published with different content "
                f"({record.digest[:19]}..., yours {digest[:19]}...): versions are immutable, "
                "bump the version in modreg.yaml"
            )
        if yanked_in(_yanks.version_kinds(self.store, name, version))[1]:  # un-yanked is fine
            raise VersionExists(
                f"{name}@{version} was yanked and cannot be published again: bump the version"
            )
        return PublishResult(name, version, digest, created=False)

    # -- resolve -----------------------------------------------------------------------------
    def versions(self, name: str) -> dict[str, bool]:
        """Every recorded version of ``name`` mapped to whether it is yanked.

        Keys that are not a version's record (a stray ``old.json``) are ignored here and
        reported by ``verify``.
        """
        self._online(f"listing the versions of {name}")
        kinds: dict[str, set[str]] = {}
        for key in self.store.list(record_prefix(name)):
            parsed = parse_record_key(key)
            if parsed is None or parsed[0] != name or version_of(parsed[1]) is None:
                continue
            kinds.setdefault(parsed[1], set()).add(parsed[2])
        # The one place that decides yanked-ness: the newest yank step (see _keys.yanked_in).
        return {v: yanked_in(found)[1] for v, found in kinds.items() if "json" in found}

    def record(self, name: str, version: str) -> VersionRecord | None:
        """The verified record of exactly ``name@version``, or None if there is none."""
        data = self._record_bytes(name, version)
        return None if data is None else parse_record(data, f"{name}@{version}")

    def _record_bytes(self, name: str, version: str) -> bytes | None:
        key = record_key(name, version)
        if self._cache is not None:
            ref = f"{name}@{version}"
            return self._cache.record(
                key, limit=RECORD_LIMIT, check=lambda data: parse_record(data, ref)
            )
        return self.store.get(key, limit=RECORD_LIMIT)

    def resolve(self, ref: str | ModuleRef) -> VersionRecord:
        """The record of the newest version matching ``ref`` (``name@spec``).

        An exact pin is one read (none at all when a remote record is cached); a range lists
        the name's versions.

        Raises:
            InvalidName, InvalidVersion: the reference does not parse.
            ModuleNotFound: no version matches; the message lists the versions that exist.
            OfflineError: offline, and the answer is not in the cache.
        """
        ref = ModuleRef.parse(ref) if isinstance(ref, str) else ref
        if ref.spec.pin is not None:
            found = self.record(ref.name, str(ref.spec.pin))
            if found is not None:
                return found
        versions = self.versions(ref.name)
        candidates = [
            (parsed, text)
            for text, yanked in versions.items()
            if (parsed := version_of(text)) is not None and ref.spec.admits(parsed, yanked=yanked)
        ]
        if not candidates:
            raise ModuleNotFound(_not_found_message(ref, versions))
        _, text = max(candidates)
        found = self.record(ref.name, text)
        if found is None:  # removed between the listing and the read: not a valid state
            raise IntegrityError(f"record of {ref.name}@{text} vanished: run 'modreg verify'")
        return found

    # -- pull --------------------------------------------------------------------------------
    def pull(self, ref: str | ModuleRef, to: str | Path | None = None) -> Module:
        """Fetch a verified copy of a module into ``to`` (or the local cache).

        Every byte is checked against the version's record, the manifest delivered must name
        that record's module, version and kind, and under a trust policy (:attr:`trust`) a
        trusted key must have signed the files. A refused pull into a new ``to`` removes it.

        Raises:
            ModuleNotFound: the reference resolves to nothing.
            IntegrityError: stored bytes do not match their digest, or the record is not the
                manifest's (nothing is delivered).
            SignatureError: the trust policy refuses the module.
            InvalidModule: ``to`` exists and holds something else, or lies in the registry.
        """
        record = self.resolve(ref)
        policy = self.trust  # key files are read before anything is written
        target = Path(to).expanduser() if to is not None else _cache_dir(self.settings, record)
        fresh = to is None or not target.exists()
        module = self._fetch(record, target, into_cache=to is None)
        try:
            check_identity(record, module.file(MANIFEST_FILE).read_bytes())
            if policy is not None:
                policy.enforce(module, module.path, self._bundles(record))
        except BaseException:
            if fresh:
                shutil.rmtree(module.path, ignore_errors=True)
            raise
        return module

    def _fetch(self, record: VersionRecord, target: Path, *, into_cache: bool) -> Module:
        """The record's files, verified, at ``target`` (no policy: :meth:`pull` applies it)."""
        self._refuse_inside(target)
        if target.exists():
            cached = verified_copy(target, record)
            if cached is not None:
                return cached
            if not into_cache:
                raise occupied(target, record)
        return self._materialise(record, target, replace_damaged=into_cache)

    def _refuse_inside(self, target: Path) -> None:
        if self.store.contains(target):
            raise InvalidModule(
                f"--to {str(target)!r} is inside the registry {self.location}: pull into a "
                "directory outside it"
            )

    def deliver(self, entry: FileEntry, target: Path) -> None:
        """Write one file of a record to the new file ``target``, every byte checked."""
        if self._cache is not None:
            self._cache.deliver(entry, target)
        else:
            deliver(self.store, entry, target)

    def _materialise(self, record: VersionRecord, target: Path, *, replace_damaged: bool) -> Module:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
        staging.mkdir()
        try:
            if self._cache is None or len(record.files) == 1:
                for entry in record.files:
                    self.deliver(entry, staging / entry.path)
            else:  # a remote registry: the files travel at once
                with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                    for done in [
                        pool.submit(self.deliver, e, staging / e.path) for e in record.files
                    ]:
                        done.result()
            return install(staging, target, record, replace_damaged=replace_damaged)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def manifest(self, ref: str | ModuleRef) -> tuple[VersionRecord, Manifest]:
        """The record and manifest of a version, read (and verified) from the store."""
        from modreg.spec.manifest import parse_manifest

        record = self.resolve(ref)
        text = self.read_file(record, MANIFEST_FILE)
        check_identity(record, text)
        return record, parse_manifest(text, source=f"{record.ref}:{MANIFEST_FILE}", trusted=True)

    def read_file(self, record: VersionRecord, path: str) -> bytes:
        """The verified bytes of one (small) file of a version."""
        entry = next((e for e in record.files if e.path == path), None)
        if entry is None:
            raise ModuleNotFound(f"{record.ref} has no file {path!r}")
        if self._cache is None:  # a local store: read it straight, checked in memory
            data = self.store.get(object_key(entry.sha256), limit=entry.size)
            if data is not None and bytes_match(data, entry):
                return data
            raise IntegrityError(
                f"object sha256:{entry.sha256[:12]} ({entry.path}) of {record.ref} is missing or "
                "damaged: run 'modreg verify'"
            )
        with tempfile.TemporaryDirectory(prefix="modreg-read-") as tmp:
            target = Path(tmp) / entry.path
            self.deliver(entry, target)
            return target.read_bytes()

    # -- copy --------------------------------------------------------------------------------
    def copy(self, ref: str | ModuleRef, to: Registry) -> PublishResult:
        """Copy one version, byte for byte, into another registry (any backend to any).

        The record is copied unchanged, so digest and provenance are kept, and so are the
        version's yank marker (its reason and time) and its signature bundles, so a mirror
        serves pulls under the same trust policy. Objects go first and the record last, so an
        interrupted copy is finished by running it again; a copy already there is completed
        (index entry, dependency keys, yank, signatures), never refused for being yanked.

        Raises:
            VersionExists: ``to`` holds other bytes at that version.
            IntegrityError: the source record is not its manifest's (nothing is copied).
        """
        record = self.resolve(ref)
        data = self._record_bytes(record.name, record.version) or b""
        _, manifest = self.manifest(record.ref)  # a copied or forged record goes nowhere
        to.claim()
        requires = list(manifest.requires or {})
        created = _protocol.receive(to.store, record, data, requires, self.deliver)
        state = _yanks.copy_steps(self.store, to.store, record.name, record.version)
        if state is not None:
            _index.append_entry(to.store, _protocol.yank_entry(record, state))
        for signer, bundle in self._bundles(record).items():
            to.store.put_if_absent(signature_key(record.name, record.version, signer), bundle)
        return PublishResult(record.name, record.version, record.digest, created)

    def refs(self) -> list[str]:
        """Every published ``name@version`` (from the records, not the index)."""
        self._online("listing the registry")
        found = []
        for key in self.store.list("records/"):
            parsed = parse_record_key(key)
            if parsed and parsed[2] == "json" and version_of(parsed[1]) is not None:
                found.append(f"{parsed[0]}@{parsed[1]}")
        return found

    # -- list / yank -------------------------------------------------------------------------
    def list(self, prefix: str = "", search: str = "") -> builtins.list[ListEntry]:
        """Every module name with its newest usable version (from the index).

        Args:
            prefix: only names starting with it: a namespace (``physics/``) or a name.
            search: only names or summaries of the newest version containing this text
                (case-insensitive).
        """
        self._online("listing the registry")
        by_name: dict[str, list[IndexEntry]] = {}
        for entry in _index.read_index(self.store):
            if version_of(entry.version) is not None and entry.name.startswith(prefix):
                by_name.setdefault(entry.name, []).append(entry)
        rows = self._rows(by_name)
        needle = search.casefold()
        return [r for r in rows if needle in r.name.casefold() or needle in r.summary.casefold()]

    def _rows(self, by_name: dict[str, builtins.list[IndexEntry]]) -> builtins.list[ListEntry]:
        rows = []
        for name in sorted(by_name):
            entries = sorted(by_name[name], key=lambda e: version_of(e.version) or Version("0"))
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
                    {e.version: e.reason for e in entries if e.yanked},
                )
            )
        return rows

    def yank(self, ref: str, reason: str = "") -> VersionRecord:
        """Mark an exact ``name@version`` as yanked (ranges skip it; exact pins still work).

        Yanking a yanked version again with another reason records the new reason; without
        one it changes nothing.

        Raises:
            InvalidVersion: ``ref`` is not an exact ``name@version``.
            ModuleNotFound: the version does not exist.
            UsageError: ``reason`` is longer than 1000 characters.
        """
        return self._set_yanked(ref, True, reason)

    def unyank(self, ref: str, reason: str = "") -> VersionRecord:
        """Undo a yank: ranges and 'latest' admit ``name@version`` again (no-op if not yanked).

        Raises:
            InvalidVersion: ``ref`` is not an exact ``name@version``.
            ModuleNotFound: the version does not exist.
        """
        return self._set_yanked(ref, False, reason)

    def yank_state(self, name: str, version: str) -> YankState | None:
        """Whether, why and since when ``name@version`` is yanked; None if it never was."""
        self._online(f"reading the yank state of {name}@{version}")
        return _yanks.read_state(self.store, name, version)

    def _set_yanked(self, ref: str, yanked: bool, reason: str) -> VersionRecord:
        name, _, version = ref.partition("@")
        parse_name(name)
        version = str(parse_version(version))
        self.claim(create=False)
        record = self.resolve(f"{name}@{version}")
        state = _yanks.change(self.store, name, version, yanked, reason)
        if state is None:  # nothing new: finish what an earlier, failed call left undone
            _protocol.complete(self.store, record, ())
        else:
            _index.append_entry(self.store, _protocol.yank_entry(record, state))
        return record

    # -- dependents and signatures -----------------------------------------------------------
    def dependents(self, name: str) -> builtins.list[tuple[str, str]]:
        """(name, version) of every published version whose ``requires`` names ``name``.

        One listing of the reverse-dependency keys; ``verify`` rebuilds missing ones. A key
        not of the shape ``deps/<ns+dep>/<ns+name>@<version>`` is skipped (verify reports it).
        """

        self._online(f"finding the dependents of {name}")
        found = []
        for key in self.store.list(dependents_prefix(name)):
            parsed = parse_dependent_key(key)
            if parsed is None or parsed[0] != name:
                continue
            _, dependent, version = parsed
            if self.store.head(record_key(dependent, version)):
                found.append((dependent, version))
        return sorted(found, key=lambda nv: (nv[0], version_of(nv[1]) or Version("0")))

    def add_signature(self, ref: str, signer: str, bundle: bytes) -> bool:
        """Store a signature bundle beside a version's record (its digest never changes).

        Returns:
            True if stored, False if this signer's identical bundle is already there.

        Raises:
            VersionExists: this signer already signed the version with another bundle.
        """
        if not _SIGNER.fullmatch(signer):
            raise ValueError(f"signer {signer!r} is not a hex key fingerprint")
        self.claim(create=False)
        record = self.resolve(ref)
        key = signature_key(record.name, record.version, signer)
        if self.store.put_if_absent(key, bundle):
            return True
        if self.store.get(key, limit=SIGNATURE_LIMIT) == bundle:
            return False
        raise VersionExists(
            f"{record.ref} already carries another signature by {signer}: signatures are "
            "immutable; sign with another key or leave the existing one"
        )

    def signatures(self, ref: str) -> dict[str, bytes]:
        """Every signature bundle of a version: signer fingerprint -> bundle bytes.

        A remote registry's bundles are cached (they are immutable), so a trusted pull works
        offline too; online, the listing always comes from the registry.
        """
        return self._bundles(self.resolve(ref))

    def _bundles(self, record: VersionRecord) -> dict[str, bytes]:
        prefix = signature_prefix(record.name, record.version)
        keys = self._cache.bundles(prefix) if self._cache is not None else self.store.list(prefix)
        found = {}
        for key in keys:
            signer = key[len(prefix) :].removesuffix(".json")
            if key == f"{prefix}{signer}.json" and _SIGNER.fullmatch(signer):
                data = self._bundle(key)
                if data is not None:
                    found[signer] = data
        return found

    def _bundle(self, key: str) -> bytes | None:
        try:
            if self._cache is not None:
                return self._cache.bundle(key, limit=SIGNATURE_LIMIT)
            return self.store.get(key, limit=SIGNATURE_LIMIT)
        except IntegrityError:  # oversized or not a file: no signature (verify reports it)
            return None

    # -- maintenance -------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Re-hash every object, check every record, rebuild the indexes, clean leftovers."""
        from modreg.registry._maintenance import verify

        self.claim(create=False)
        return verify(self)

    def repair(self, source: Registry) -> RepairReport:
        """Restore damaged or missing objects from another registry holding the same bytes.

        Each object is fetched by digest and checked against this registry's own record
        before it is put back. Run :meth:`verify` afterwards to see the registry whole.
        """
        from modreg.registry._maintenance import repair

        self.claim(create=False)
        return repair(self, source)

    def gc(self, *, min_age: float = ORPHAN_AGE_SECONDS) -> tuple[int, int]:
        """Remove crash leftovers: temp files, stale markers, and objects nothing refers to.

        Returns:
            (temporary files and stale markers removed, orphan objects removed).
        """
        from modreg.registry._maintenance import gc

        self.claim(create=False)
        return gc(self, min_age=min_age)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _not_found_message(ref: ModuleRef, versions: dict[str, bool]) -> str:
    if not versions:
        return f"no module named {ref.name!r} in the registry: publish it first or check the name"
    listed = ", ".join(
        f"{v}{' (yanked)' if y else ''}"
        for v, y in sorted(versions.items(), key=lambda i: version_of(i[0]) or Version("0"))
    )
    return f"no version of {ref.name} matches {str(ref.spec)!r}; available: {listed}"


def _cache_dir(settings: Settings, record: VersionRecord) -> Path:
    """Where a pull without ``--to`` lands: by name, version *and digest*, so two registries
    holding other bytes under one ``name@version`` never replace each other's folder."""
    digest = record.digest.removeprefix("sha256:")[:16]
    return settings.cache / record.name.replace("/", "+") / f"{record.version}-{digest}"
