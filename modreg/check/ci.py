"""CI mode: check every module folder of a repository before it is published.

For each folder holding a ``modreg.yaml``:

1. ``manifest`` — the folder is a valid, safe module (:func:`modreg._files.scan_module`:
   manifest, units and equation dimensions, weights safety).
2. ``digest`` — the digest is reproducible: a copy of the folder elsewhere hashes the same,
   and if the registry already holds this version its digest equals the folder's.
3. ``interface`` — the version bump over the newest published version below it follows the
   interface policy (:mod:`modreg.check.interface`).
4. ``accuracy[i]`` — each entry of the manifest's ``checks:`` (torch, via
   :mod:`modreg.check.replace`).

A module that fails ``manifest`` is not checked further: nothing else can be trusted.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from modreg._files import check_hybrid, registry_parts
from modreg.check.interface import compare
from modreg.check.report import CheckReport, run_check
from modreg.errors import InterfaceMismatch, InvalidModule
from modreg.module import Module
from modreg.spec.manifest import MANIFEST_FILE, Manifest

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = [
    "Side",
    "check_folder",
    "check_interface",
    "check_repository",
    "load_side",
    "module_dirs",
]


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a manifest and its files' digests (folder or registry)."""

    label: str
    manifest: Manifest
    files: dict[str, str]

    def weights_digest(self) -> str | None:
        weights = self.manifest.weights
        return self.files.get(weights) if weights else None


def load_side(ref_or_dir: str | Path, registry: Registry) -> Side:
    """A module folder if ``ref_or_dir`` is a directory, else a registry ``NAME@SPEC``.

    Raises:
        InvalidModule, InvalidManifest: the folder is not a valid module.
        ModuleNotFound, InvalidName, InvalidVersion: the reference resolves to nothing.
    """
    path = Path(ref_or_dir)
    if path.is_dir():
        module = Module.from_dir(path)
        return Side(str(path), module.manifest, {e.path: e.sha256 for e in module.files})
    text = str(ref_or_dir)
    if isinstance(ref_or_dir, Path) or text.startswith((".", "/", "~")) or path.exists():
        raise InvalidModule(f"{text!r} is not a module folder: give a directory or NAME@VERSION")
    record, manifest = registry.manifest(str(ref_or_dir))
    return Side(record.ref, manifest, {f.path: f.sha256 for f in record.files})


def check_interface(old: Side, new: Side, report: CheckReport) -> None:
    """Judge NEW's version bump over OLD against the interface policy; add one result.

    Raises:
        InterfaceMismatch: OLD and NEW are different modules (a usage error, not a finding).
    """
    if old.manifest.name != new.manifest.name:
        raise InterfaceMismatch(
            f"cannot compare {old.label} ({old.manifest.ref}) with {new.label} "
            f"({new.manifest.ref}): they are different modules; give two versions of one name"
        )
    with run_check(report, new.manifest.ref, "interface") as outcome:
        weights_changed = old.weights_digest() != new.weights_digest()
        result = compare(old.manifest, new.manifest, weights_changed=weights_changed)
        details = tuple(str(c) for c in result.changes) or ("no changes",)
        outcome.set(
            "pass" if result.ok else "fail",
            result.summary(),
            details,
            {
                "old": result.old,
                "new": result.new,
                "required": str(result.required),
                "actual": str(result.actual) if result.actual else None,
                "changes": [
                    {"kind": c.kind, "where": c.where, "detail": c.detail, "bump": str(c.bump)}
                    for c in result.changes
                ],
            },
        )


def module_dirs(root: str | Path) -> list[Path]:
    """Every module folder at or below ``root`` (hidden folders skipped), sorted.

    Raises:
        InvalidModule: ``root`` is not a directory, or holds no module folder.
    """
    base = Path(root)
    if not base.is_dir():
        raise InvalidModule(f"{str(root)!r} is not a directory: give a folder of module folders")
    if (base / MANIFEST_FILE).is_file():
        return [base]
    found = sorted(
        p.parent
        for p in base.rglob(MANIFEST_FILE)
        if not any(part.startswith(".") for part in p.relative_to(base).parts)
    )
    if not found:
        raise InvalidModule(f"no module folder (with {MANIFEST_FILE}) under {str(root)!r}")
    return found


def _repacked_digest(directory: Path) -> str:
    """The digest of a fresh copy of ``directory``: it must not depend on where or when."""
    with tempfile.TemporaryDirectory(prefix="modreg-check-") as tmp:
        copy = Path(tmp) / "module"
        shutil.copytree(directory, copy, symlinks=True)
        return Module.from_dir(copy).digest


def _check_digest(module: Module, registry: Registry, report: CheckReport) -> None:
    with run_check(report, module.ref, "digest") as outcome:
        again = _repacked_digest(module.path)
        data = {"digest": module.digest}
        if again != module.digest:
            outcome.set("fail", f"re-packing gives {again}, the folder {module.digest}", (), data)
            return
        published = registry.versions(module.name)
        if module.version not in published:
            outcome.set(
                "pass", f"{_short(module.digest)} reproducible; not yet published", (), data
            )
            return
        record = registry.resolve(module.ref)
        if record.digest != module.digest:
            outcome.set(
                "fail",
                f"registry holds {module.ref} as {_short(record.digest)} but the folder is "
                f"{_short(module.digest)}: published versions are immutable, bump the version",
                (),
                data | {"published": record.digest},
            )
            return
        yanked = " (yanked)" if published[module.version] else ""
        outcome.set("pass", f"{_short(module.digest)} reproducible, as published{yanked}", (), data)


def _short(digest: str) -> str:
    return digest[:19] + "..."


def _predecessor(module: Module, registry: Registry) -> str | None:
    """The newest non-yanked published version below the folder's (None: a new module)."""
    mine = Version(module.version)
    older = [Version(v) for v, yanked in registry.versions(module.name).items() if not yanked]
    older = [v for v in older if v < mine]
    return f"{module.name}@{max(older)}" if older else None


def _check_semver(module: Module, registry: Registry, report: CheckReport) -> None:
    previous = _predecessor(module, registry)
    if previous is None:
        with run_check(report, module.ref, "interface") as outcome:
            outcome.set("pass", "no earlier published version to compare with (new module)")
        return
    new = Side(str(module.path), module.manifest, {e.path: e.sha256 for e in module.files})
    check_interface(load_side(previous, registry), new, report)


def check_folder(
    directory: Path,
    registry: Registry,
    report: CheckReport,
    *,
    data_root: Path,
    allow_missing_data: bool = False,
    latency: bool = True,
) -> None:
    """All CI checks of one module folder, appended to ``report``."""
    module: Module | None = None
    with run_check(report, str(directory), "manifest") as outcome:
        module = Module.from_dir(directory)
        if module.kind == "hybrid":  # checked against its parts as publish checks it
            check_hybrid(module.path, module.manifest, registry_parts(registry))
        outcome.set(
            "pass", f"valid {module.kind} module in {directory}, {len(module.files)} file(s)"
        )
    if module is None:
        return
    # Once the manifest validates, every row (this one too) names the module by its ref.
    report.results[-1] = dataclasses.replace(report.results[-1], module=module.ref)
    _check_digest(module, registry, report)
    _check_semver(module, registry, report)
    run_declared_checks(
        module,
        registry,
        report,
        data_root=data_root,
        allow_missing_data=allow_missing_data,
        latency=latency,
    )


def run_declared_checks(
    module: Module,
    registry: Registry,
    report: CheckReport,
    *,
    data_root: Path,
    allow_missing_data: bool,
    latency: bool,
) -> None:
    """The module's ``checks:`` entries, ``accuracy[i]`` each, appended to ``report``."""
    from modreg.check.replace import run_spec

    for index, spec in enumerate(module.manifest.checks):
        run_spec(
            module,
            spec,
            registry,
            report,
            check=f"accuracy[{index}]",
            data_root=data_root,
            allow_missing_data=allow_missing_data,
            latency=latency,
        )


def check_repository(
    root: str | Path,
    registry: Registry,
    *,
    data_root: str | Path | None = None,
    allow_missing_data: bool = False,
    latency: bool = True,
) -> CheckReport:
    """Run CI mode over every module folder under ``root``.

    Args:
        root: a folder of module folders (``modules/``) or one module folder.
        registry: the registry holding published versions to compare with.
        data_root: where ``checks:`` data paths are relative to (default: the working
            directory, the repository root in CI).

    Raises:
        InvalidModule: ``root`` holds no module folder.
    """
    report = CheckReport()
    base = Path.cwd() if data_root is None else Path(data_root)
    for directory in module_dirs(root):
        check_folder(
            directory,
            registry,
            report,
            data_root=base,
            allow_missing_data=allow_missing_data,
            latency=latency,
        )
    return report
