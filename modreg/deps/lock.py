"""A hybrid folder's ``modreg.lock``: written from its ``requires``, refreshed, upgraded by checks.

``requires`` says which versions a hybrid accepts; the lock says which one it was built with
(version and digest). :func:`write_lock` keeps every pin that still holds and resolves the
rest to the newest version in range; :func:`upgrade_lock` moves pins forward only to
versions under which the hybrid still builds and its declared ``checks:`` still pass, so an
upgrade is a claim backed by the same evidence as a release. A lock naming bytes the
registry does not have is refused: it would rebuild something other than what was trained.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from modreg._content import LOCK_FILE
from modreg.deps.tree import dependency_tree
from modreg.errors import DependencyError, InvalidModule, ModregError, ModuleNotFound
from modreg.spec.graph import LockedModule, LockFile, dump_lock, parse_lock
from modreg.spec.manifest import Manifest, load_manifest
from modreg.spec.names import parse_spec

if TYPE_CHECKING:
    from modreg.check.report import CheckReport
    from modreg.registry import Registry

__all__ = [
    "LockChange",
    "LockResult",
    "hybrid_checks",
    "published_versions",
    "read_lock",
    "resolve_requires",
    "upgrade_lock",
    "write_lock",
    "write_pins",
]


@dataclass(frozen=True)
class LockChange:
    """One line of a lock diff: a pin added, moved or dropped."""

    name: str
    old: LockedModule | None
    new: LockedModule | None

    def line(self) -> str:
        if self.old is None:
            assert self.new is not None
            return f"+ {self.name} {self.new.version} ({self.new.digest[:19]}...)"
        if self.new is None:
            return f"- {self.name} {self.old.version}"
        return f"~ {self.name} {self.old.version} -> {self.new.version} ({self.new.digest[:19]}...)"


@dataclass
class LockResult:
    """What ``modreg lock`` did: the diff, whether the file was written, what was tried."""

    directory: Path
    pins: dict[str, LockedModule]
    changes: list[LockChange] = field(default_factory=list)
    written: bool = False
    tried: list[str] = field(default_factory=list)  # "name version: verdict" per candidate

    def to_json(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "written": self.written,
            "lock": {n: p.model_dump() for n, p in sorted(self.pins.items())},
            "changes": [
                {
                    "name": c.name,
                    "old": c.old.version if c.old else None,
                    "new": c.new.version if c.new else None,
                }
                for c in self.changes
            ],
            "tried": self.tried,
        }


def published_versions(registry: Registry, name: str) -> dict[str, bool]:
    """Version -> yanked of ``name`` in the registry."""
    return registry.versions(name)


def _pin_of(registry: Registry, ref: str) -> LockedModule:
    record = registry.resolve(ref)
    return LockedModule(version=record.version, digest=record.digest)


def _checked_pin(registry: Registry, name: str, pin: LockedModule, owner: str) -> LockedModule:
    """``pin`` if the registry holds exactly those bytes, else a DependencyError."""
    try:
        held = _pin_of(registry, f"{name}@{pin.version}")
    except ModuleNotFound:
        raise DependencyError(
            f"{owner}: {LOCK_FILE} pins {name}@{pin.version}, which the registry does not "
            f"have: publish it, or run 'modreg lock' to re-pin to a published version"
        ) from None
    if held.digest != pin.digest:
        raise DependencyError(
            f"{owner}: {LOCK_FILE} pins {name}@{pin.version} as {pin.digest[:23]}... but the "
            f"registry holds {held.digest[:23]}...: that digest is not in the registry; "
            "rebuild and retrain the hybrid against the published version"
        )
    return pin


def resolve_requires(
    registry: Registry,
    requires: Mapping[str, str],
    *,
    owner: str,
    pins: Mapping[str, LockedModule] | None = None,
    forced: Mapping[str, str] | None = None,
) -> dict[str, LockedModule]:
    """Pin every required module: ``forced`` versions first, then valid ``pins``, then newest.

    Raises:
        DependencyError: a forced version lies outside its range, a lock pin names bytes
            the registry lacks, or no published version meets a range.
    """
    pins, forced = pins or {}, forced or {}
    resolved: dict[str, LockedModule] = {}
    for name, text in sorted(requires.items()):
        spec = parse_spec(text)
        if name in forced:
            if not spec.admits(Version(forced[name]), yanked=False):
                raise DependencyError(
                    f"{owner} requires {name} {text!r}, which does not admit {forced[name]}"
                )
            resolved[name] = _pin_of(registry, f"{name}@{forced[name]}")
        elif name in pins and spec.admits(Version(pins[name].version), yanked=False):
            resolved[name] = _checked_pin(registry, name, pins[name], owner)
        else:
            try:
                resolved[name] = _pin_of(registry, f"{name}@{text}")
            except ModuleNotFound as exc:
                raise DependencyError(
                    f"{owner} requires {name} {text!r}, which cannot be met: {exc}"
                ) from None
    return resolved


def read_lock(directory: Path) -> dict[str, LockedModule]:
    """The pins of ``DIR/modreg.lock`` (empty when there is none)."""
    path = directory / LOCK_FILE
    if not path.is_file():
        return {}
    return dict(parse_lock(path.read_bytes(), source=str(path)).modules)


def _hybrid_manifest(directory: Path) -> Manifest:
    manifest = load_manifest(directory)
    if manifest.kind != "hybrid" or not manifest.requires:
        raise InvalidModule(
            f"{str(directory)!r} holds a {manifest.kind} module ({manifest.ref}); only hybrids "
            "(kind: hybrid, with requires:) have a lock"
        )
    return manifest


def _diff(old: Mapping[str, LockedModule], new: Mapping[str, LockedModule]) -> list[LockChange]:
    names = sorted(set(old) | set(new))
    return [LockChange(n, old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)]


def write_pins(directory: Path, pins: Mapping[str, LockedModule]) -> None:
    """Replace the lock atomically: a crash leaves the old file or the new, never half."""
    text = dump_lock(LockFile(modules=dict(pins)))
    fd, tmp = tempfile.mkstemp(prefix=".modreg.lock.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, directory / LOCK_FILE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_lock(directory: str | Path, registry: Registry) -> LockResult:
    """Write or refresh a hybrid folder's lock: valid pins stay, the rest go to newest in range.

    Raises:
        InvalidModule: the folder is not a hybrid.
        DependencyError: a pin names bytes the registry lacks, or a range cannot be met
            (the lock is left as it was).
    """
    folder = Path(directory)
    manifest = _hybrid_manifest(folder)
    assert manifest.requires is not None
    old = read_lock(folder)
    pins = resolve_requires(registry, manifest.requires, owner=manifest.ref, pins=old)

    dependency_tree(registry, manifest.ref, pins, manifest.requires)  # a cycle: nothing written
    result = LockResult(folder, pins, _diff(old, pins))
    if result.changes or not (folder / LOCK_FILE).is_file():
        write_pins(folder, pins)
        result.written = True
    return result


def hybrid_checks(directory: Path, registry: Registry, *, data_root: Path) -> CheckReport:
    """Build the hybrid in ``directory`` and run its ``checks:``; absent data is a skip.

    A ``build`` result comes first (pull each locked part, wire, load the weights); the
    checks run only when it holds.
    """
    import dataclasses

    from modreg.check.ci import run_declared_checks
    from modreg.check.report import CheckReport, run_check
    from modreg.module import Module

    report = CheckReport()
    module: Module | None = None
    with run_check(report, str(directory), "build") as outcome:
        from modreg.runtime import build

        module = Module.from_dir(directory)
        build(module, registry=registry)
        outcome.set("pass", f"builds with {_pins_text(read_lock(directory))}")
    if module is None:
        return report
    report.results[-1] = dataclasses.replace(report.results[-1], module=module.ref)
    if report.ok:  # a hybrid that did not build cannot run its checks
        run_declared_checks(
            module, registry, report, data_root=data_root, allow_missing_data=True, latency=False
        )
    return report


def _pins_text(pins: Mapping[str, LockedModule]) -> str:
    return ", ".join(f"{n}@{p.version}" for n, p in sorted(pins.items()))


def _trial(
    directory: Path,
    registry: Registry,
    pins: Mapping[str, LockedModule],
    data_root: Path,
) -> CheckReport:
    """The checks of the hybrid with ``pins`` as its lock, on a copy (the folder is untouched)."""
    with tempfile.TemporaryDirectory(prefix="modreg-lock-") as tmp:
        copy = Path(tmp) / directory.name
        shutil.copytree(directory, copy)
        write_pins(copy, pins)
        return hybrid_checks(copy, registry, data_root=data_root)


def _candidates(registry: Registry, name: str, spec: str, current: str) -> list[str]:
    """Versions of ``name`` inside ``spec`` newer than ``current``, newest first."""
    allowed = parse_spec(spec)
    now = Version(current)
    found = [
        Version(v)
        for v, yanked in published_versions(registry, name).items()
        if Version(v) > now and allowed.admits(Version(v), yanked=yanked)
    ]
    return [str(v) for v in sorted(found, reverse=True)]


def _verdict(report: CheckReport) -> str:
    if report.ok:
        skipped = report.counts()["skip"]
        return "pass" + (f" ({skipped} check(s) skipped: no data)" if skipped else "")
    return "fail: " + report.failures[0].line()


def upgrade_lock(
    directory: str | Path,
    registry: Registry,
    *,
    name: str | None = None,
    data_root: str | Path | None = None,
) -> LockResult:
    """Move pins to the newest versions in range under which the checks still pass.

    Each module (or only ``name``) is tried from its newest candidate down; the first that
    builds with no failing check wins, the other pins held where they are. When nothing
    passes the lock is left alone.

    Raises:
        DependencyError: ``name`` is not required, or the current lock is invalid.
    """
    folder = Path(directory)
    manifest = _hybrid_manifest(folder)
    assert manifest.requires is not None
    if name is not None and name not in manifest.requires:
        raise DependencyError(
            f"{manifest.ref} does not require {name!r}; it requires {sorted(manifest.requires)}"
        )
    old = read_lock(folder)
    chosen = resolve_requires(registry, manifest.requires, owner=manifest.ref, pins=old)
    result = LockResult(folder, chosen)
    root = Path.cwd() if data_root is None else Path(data_root)
    for module in [name] if name else sorted(manifest.requires):
        for version in _candidates(
            registry, module, manifest.requires[module], chosen[module].version
        ):
            trial = chosen | {module: _pin_of(registry, f"{module}@{version}")}
            try:
                report = _trial(folder, registry, trial, root)
            except ModregError as exc:
                result.tried.append(f"{module} {version}: fail: {exc}")
                continue
            result.tried.append(f"{module} {version}: {_verdict(report)}")
            if report.ok:
                chosen = trial
                break
    result.pins = chosen
    result.changes = _diff(old, chosen)
    if result.changes:
        write_pins(folder, chosen)
        result.written = True
    return result
