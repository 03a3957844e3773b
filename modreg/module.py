"""A module on disk: its files, their digest, and its manifest (parsed when first asked for)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modreg._content import MANIFEST_FILE, FileEntry, tree_digest

if TYPE_CHECKING:
    from modreg.spec.interface import Interface
    from modreg.spec.manifest import Manifest

__all__ = ["Module"]


@dataclass(frozen=True)
class Module:
    """A module directory whose files are known by their hashes.

    Get one from :func:`modreg.pull` (every byte checked against the registry) or
    :meth:`Module.from_dir` (a local directory, validated, e.g. before publishing). The
    manifest of a pulled module is parsed and validated on first use of :attr:`manifest`, so
    a pull that only needs the files (``modreg pull``) never pays for it.
    """

    path: Path
    files: tuple[FileEntry, ...]
    digest: str
    name: str
    version: str
    kind: str

    @classmethod
    def from_dir(cls, directory: str | Path) -> Module:
        """Validate and hash a local module directory.

        Raises:
            InvalidModule, InvalidManifest, InvalidWeights: see :func:`modreg.publish`.
        """
        from modreg._files import scan_module

        manifest, entries = scan_module(directory)
        module = cls(
            Path(directory),
            tuple(entries),
            tree_digest(entries),
            manifest.name,
            manifest.version,
            manifest.kind,
        )
        vars(module)["manifest"] = manifest  # already validated: fill the cached property
        return module

    @functools.cached_property
    def manifest(self) -> Manifest:
        """The validated manifest.

        Raises:
            InvalidManifest: the file no longer validates (it was edited after the pull).
        """
        from modreg.spec.manifest import parse_manifest

        text = self.file(MANIFEST_FILE).read_bytes()
        return parse_manifest(text, source=f"{self.path / MANIFEST_FILE}")

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def interface(self) -> Interface:
        from modreg.spec.interface import Interface

        return Interface.of(self.manifest)

    def file(self, name: str) -> Path:
        """Path of one of the module's files, e.g. ``module.file("weights.safetensors")``."""
        if name not in {entry.path for entry in self.files}:
            raise KeyError(
                f"{self.ref} has no file {name!r}; it has {[e.path for e in self.files]}"
            )
        return self.path / name

    def __repr__(self) -> str:
        return f"Module({self.ref!r}, kind={self.kind!r}, digest={self.digest[:19]!r})"
