"""Reverse-dependency checks: what a new module version does to everything built on it.

``modreg check dependents physics/drag@1.2.0`` is the crater run of modreg. The registry's
reverse-dependency index (:meth:`Registry.dependents`, one listing, no scan of records)
and, with ``--in modules/``, the hybrid folders of a repository give every hybrid that
requires the module; those whose range admits the new version are each rebuilt with it
forced into a copy of their lock (the other pins held, or resolved to the newest in range)
and their declared ``checks:`` re-run. The result per dependent is PASS, FAIL, or SKIPPED
(no checks declared, or no data for them), with the figures of its worst check.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from modreg.deps.lock import hybrid_checks, read_lock, resolve_requires, write_pins
from modreg.deps.tree import dependency_tree, published_requires
from modreg.errors import ModregError
from modreg.spec.names import parse_spec

if TYPE_CHECKING:
    from modreg.check.report import CheckReport, CheckResult
    from modreg.registry import Registry, VersionRecord

__all__ = [
    "Dependent",
    "DependentResult",
    "DependentsReport",
    "check_dependents",
    "failing_lines",
    "find_dependents",
    "published_requires",
]

Progress = Callable[[str, int, int], None]  # (dependent, done, total)
_VERDICT = {"pass": "PASS", "fail": "FAIL", "skip": "SKIPPED"}


@dataclass(frozen=True)
class Dependent:
    """A hybrid that requires the module by a range admitting the new version."""

    ref: str
    requires: str
    folder: Path | None = None  # a source folder (``--in``); None: the published version

    @property
    def origin(self) -> str:
        return str(self.folder) if self.folder is not None else "registry"


@dataclass
class DependentResult:
    """One dependent rebuilt with the new version: its verdict, figures and check rows."""

    dependent: Dependent
    status: str  # pass | fail | skip
    figures: str
    report: CheckReport

    def to_json(self) -> dict[str, Any]:
        return {
            "dependent": self.dependent.ref,
            "requires": self.dependent.requires,
            "origin": self.dependent.origin,
            "status": self.status,
            "figures": self.figures,
            "checks": [r.to_json() for r in self.report.results],
        }


@dataclass
class DependentsReport:
    """Every dependent of one new version, in the order they were checked."""

    ref: str
    results: list[DependentResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in ("pass", "fail", "skip")}

    def lines(self) -> list[str]:
        """``showcase/baseball@0.1.0  requires physics/drag~=1.1  <figures>  PASS`` rows."""
        width = max((len(r.dependent.ref) for r in self.results), default=0)
        need = max((len(r.dependent.requires) for r in self.results), default=0)
        name = self.ref.partition("@")[0]
        return [
            f"{r.dependent.ref:<{width}}  requires {name}{r.dependent.requires:<{need}}  "
            f"{r.figures}  {_VERDICT[r.status]}"
            for r in self.results
        ]

    def summary(self) -> str:
        c = self.counts()
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{len(self.results)} dependent(s) of {self.ref}: {c['pass']} passed, "
            f"{c['fail']} failed, {c['skip']} skipped: {verdict}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "ok": self.ok,
            "counts": self.counts(),
            "dependents": [r.to_json() for r in self.results],
        }

    def check_report(self) -> CheckReport:
        """All check rows in one report (for JUnit: one suite per dependent)."""
        from modreg.check.report import CheckReport

        merged = CheckReport()
        for result in self.results:
            merged.extend(result.report)
        return merged


def _admits(spec: str, version: str) -> bool:
    return parse_spec(spec).admits(Version(version), yanked=False)


def _registry_dependents(registry: Registry, record: VersionRecord) -> list[Dependent]:
    pairs: list[tuple[str, str]] = registry.dependents(record.name)
    yanked = {name: registry.versions(name) for name in {n for n, _ in pairs}}
    # a yanked dependent is withdrawn: nobody should build on it, so it gates nothing
    refs = [f"{n}@{v}" for n, v in sorted(pairs) if not yanked[n].get(v, False)]
    found = []
    for ref, requires in published_requires(registry, refs).items():
        spec = requires.get(record.name)
        if spec is not None and _admits(spec, record.version):
            found.append(Dependent(ref, spec))
    return found


def _folder_dependents(root: Path, record: VersionRecord) -> list[Dependent]:
    from modreg.check.ci import module_dirs
    from modreg.spec.manifest import load_manifest

    found = []
    for directory in module_dirs(root):
        manifest = load_manifest(directory)
        spec = (manifest.requires or {}).get(record.name)
        if manifest.kind == "hybrid" and spec is not None and _admits(spec, record.version):
            found.append(Dependent(manifest.ref, spec, directory))
    return found


def find_dependents(
    registry: Registry, ref: str, *, sources: str | Path | None = None
) -> tuple[VersionRecord, list[Dependent]]:
    """The new version's record and every dependent whose range admits it.

    A folder under ``sources`` that holds a published ``name@version`` stands for it (it is
    the source being changed); published dependents come from the reverse index.

    Raises:
        ModuleNotFound: ``ref`` resolves to nothing.
        InvalidModule: ``sources`` holds no module folder.
    """
    record = registry.resolve(ref)
    folders = _folder_dependents(Path(sources), record) if sources is not None else []
    local = {d.ref for d in folders}
    published = [d for d in _registry_dependents(registry, record) if d.ref not in local]
    return record, sorted(published + folders, key=lambda d: (d.ref, d.origin))


def _figure(result: CheckResult) -> str:
    """``accuracy[0] rmse F +0.4% (0.0012 N; limit 0.0045 N, tol 2%)`` from a check row."""
    ports = result.data.get("ports") or []
    if not ports:
        return f"{result.check} {result.message}"
    worst = max(ports, key=lambda p: p["degradation"] - p["limit"])
    unit = f" {worst['unit']}" if worst["metric"] in ("rmse", "mae") else ""
    scale = worst["scale"] or 1.0
    tolerance = result.data.get("tolerance")
    tol = f", tol {tolerance}" if tolerance else ""
    return (
        f"{result.check} {worst['metric']} {worst['port']} "
        f"{100 * worst['degradation'] / scale:+.2g}% ({worst['degradation']:.3g}{unit}; "
        f"limit {worst['limit']:.3g}{unit}{tol})"
    )


def _verdict(report: CheckReport) -> tuple[str, str]:
    failures = report.failures
    if failures:
        return "fail", _figure(failures[0])
    accuracy = [r for r in report.results if r.check.startswith("accuracy[")]
    ran = [r for r in accuracy if r.status == "pass"]
    if not accuracy:
        return "skip", "no checks declared (builds)"
    if not ran:
        return "skip", f"no data: {accuracy[0].message}"
    main = [r for r in ran if not r.check.endswith(":range")] or ran
    return "pass", _figure(main[0])


def _rebuild_and_check(
    registry: Registry, dependent: Dependent, record: VersionRecord, data_root: Path
) -> CheckReport:
    """The dependent's checks with ``record`` forced into a copy of its lock."""
    from modreg.spec.manifest import load_manifest

    source = dependent.folder or registry.pull(dependent.ref).path
    with tempfile.TemporaryDirectory(prefix="modreg-dependents-") as tmp:
        copy = Path(tmp) / source.name
        shutil.copytree(source, copy)
        manifest = load_manifest(copy)
        assert manifest.requires is not None
        pins = resolve_requires(
            registry,
            manifest.requires,
            owner=dependent.ref,
            pins=read_lock(copy),
            forced={record.name: record.version},
        )
        dependency_tree(registry, dependent.ref, pins, manifest.requires)  # refuse cycles
        write_pins(copy, pins)
        return hybrid_checks(copy, registry, data_root=data_root)


def check_dependents(
    registry: Registry,
    ref: str,
    *,
    sources: str | Path | None = None,
    data_root: str | Path | None = None,
    progress: Progress | None = None,
) -> DependentsReport:
    """Rebuild every dependent of ``ref`` with it and re-run their declared checks.

    Args:
        ref: the new version (``NAME@VERSION``, published).
        sources: a folder of module sources whose hybrids count as dependents too.
        data_root: where ``checks:`` data paths start (default: the working directory).

    Nothing is written to the registry or to the source folders: each dependent is
    rebuilt from a temporary copy.

    Raises:
        ModuleNotFound: ``ref`` resolves to nothing.
    """
    from modreg.check.report import CheckReport, failure

    record, dependents = find_dependents(registry, ref, sources=sources)
    root = Path.cwd() if data_root is None else Path(data_root)
    report = DependentsReport(record.ref)
    for done, dependent in enumerate(dependents):
        if progress is not None:
            progress(dependent.ref, done, len(dependents))
        try:
            rows = _rebuild_and_check(registry, dependent, record, root)
        except ModregError as exc:
            rows = CheckReport()
            rows.add(failure(dependent.ref, "requires", exc))
        status, figures = _verdict(rows)
        report.results.append(DependentResult(dependent, status, figures, rows))
    if progress is not None:
        progress("", len(dependents), len(dependents))
    return report


def failing_lines(report: DependentsReport) -> Sequence[str]:
    """``FAIL <dependent> <check>: <message>`` for every failed row (what CI logs show)."""
    return [row.line() for result in report.results for row in result.report.failures]
