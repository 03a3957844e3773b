"""A module on disk: validated manifest, files and digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modreg._files import FileEntry, scan_module, tree_digest
from modreg.spec.interface import Interface
from modreg.spec.manifest import Manifest

__all__ = ["Module"]


@dataclass(frozen=True)
class Module:
    """A module directory whose manifest and files have been validated and hashed.

    Get one from :func:`modreg.pull` (verified against the registry) or
    :meth:`Module.from_dir` (a local directory, e.g. before publishing).
    """

    manifest: Manifest
    path: Path
    files: tuple[FileEntry, ...]
    digest: str

    @classmethod
    def from_dir(cls, directory: str | Path) -> Module:
        """Validate and hash a local module directory.

        Raises:
            InvalidModule, InvalidManifest, InvalidWeights: see :func:`modreg.publish`.
        """
        manifest, entries = scan_module(directory)
        return cls(manifest, Path(directory), tuple(entries), tree_digest(entries))

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def ref(self) -> str:
        """``name@version``."""
        return self.manifest.ref

    @property
    def interface(self) -> Interface:
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
