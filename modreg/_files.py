"""Module directory contents: which files may be in one, and the checks on weights.

A module directory holds its manifest, the files the manifest names (weights, lockfile) and
optionally a README; nothing else. Weights are read as safetensors *by hand*: the 8-byte
header length and the JSON header are parsed here and the data section is viewed with numpy,
so no file from a module is ever unpickled, imported or executed.

Every file's size is checked from ``stat`` before it is read (``MAX_FILE_BYTES``), and the
manifest and lockfile are read with a bounded read, so a 3 GB ``modreg.yaml`` is refused
after a 1 MiB read. A hybrid is checked as strictly as the builder would check it, on its
files alone (:func:`check_hybrid`): the lock, the wiring, its weights; with a lookup of its
parts' published manifests, also their ports, units and digests.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modreg._content import LOCK_FILE, MANIFEST_FILE, FileEntry, hash_file
from modreg.errors import IntegrityError, InvalidModule, InvalidWeights
from modreg.spec.archs import expected_tensors
from modreg.spec.graph import LockFile
from modreg.spec.manifest import MAX_MANIFEST_BYTES, Manifest, load_manifest, read_bounded

if TYPE_CHECKING:
    from modreg.registry import Registry

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_WEIGHTS_BYTES",
    "PartLookup",
    "TensorInfo",
    "check_hybrid",
    "read_safetensors_header",
    "registry_parts",
    "scan_module",
]

OPTIONAL_FILES = frozenset({"README.md"})
MAX_HEADER_BYTES = 100 << 20
MAX_WEIGHTS_BYTES = 1 << 36  # 64 GiB: far above any module modreg serves, far below a disk
MAX_FILE_BYTES = {MANIFEST_FILE: MAX_MANIFEST_BYTES, LOCK_FILE: 1 << 20, "README.md": 1 << 20}
# (name, exact version) -> (digest, manifest) of a published part, None when absent.
PartLookup = Callable[[str, str], "tuple[str, Manifest] | None"]
_DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
}


@dataclass(frozen=True)
class TensorInfo:
    """A tensor described by a safetensors header."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


def read_safetensors_header(path: Path) -> dict[str, TensorInfo]:
    """Parse and check a safetensors header without loading any tensor.

    Raises:
        InvalidWeights: the file is not a well-formed safetensors file (a pickle renamed
            ``.safetensors`` lands here), or its offsets do not tile the data section.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise InvalidWeights(f"{path.name}: truncated ({size} bytes), not a safetensors file")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(MAX_HEADER_BYTES, size - 8) or header_len < 2:
            raise InvalidWeights(
                f"{path.name}: not a safetensors file (bad header length): save weights with "
                "safetensors.torch.save_file"
            )
        raw = handle.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidWeights(f"{path.name}: not a safetensors file (header is not JSON)") from exc
    except RecursionError:  # [[[[...: a header is one flat mapping
        raise InvalidWeights(f"{path.name}: not a safetensors file (header nests)") from None
    if not isinstance(header, dict):
        raise InvalidWeights(f"{path.name}: not a safetensors file (header is not a mapping)")
    header.pop("__metadata__", None)
    tensors = {name: _tensor_info(path.name, name, spec) for name, spec in header.items()}
    _check_tiling(path.name, tensors, size - 8 - header_len)
    return tensors


def _tensor_info(file: str, name: str, spec: object) -> TensorInfo:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise InvalidWeights(f"{file}: tensor {name!r} has a malformed header entry")
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if dtype not in _DTYPES:
        raise InvalidWeights(
            f"{file}: tensor {name!r} has dtype {dtype!r}; weights must be F16, BF16, F32 or F64"
        )
    ints = [*shape, *offsets] if isinstance(shape, list) and isinstance(offsets, list) else None
    if ints is None or len(offsets) != 2 or not all(type(v) is int and v >= 0 for v in ints):
        raise InvalidWeights(f"{file}: tensor {name!r} has a malformed shape or offsets")
    start, end = offsets
    if end - start != math.prod(shape) * _DTYPES[dtype][1]:
        raise InvalidWeights(f"{file}: tensor {name!r} byte length does not match its shape")
    return TensorInfo(_DTYPES[dtype][0], tuple(shape), start, end)


def _check_tiling(file: str, tensors: dict[str, TensorInfo], data_size: int) -> None:
    position = 0
    for info in sorted(tensors.values(), key=lambda t: (t.start, t.end)):
        if info.start != position:
            raise InvalidWeights(f"{file}: tensor data overlaps or leaves gaps: file is damaged")
        position = info.end
    if position != data_size:
        raise InvalidWeights(
            f"{file}: data section is {data_size} bytes but tensors need {position}: "
            "the file is truncated or padded"
        )


def check_weights(path: Path, manifest: Manifest) -> None:
    """Check a network module's weights against its architecture, ports and dtype.

    Raises:
        InvalidWeights: wrong or missing tensors, wrong shapes or dtype, NaN/Inf values.
    """
    assert manifest.network is not None
    n_in = sum(p.size for p in manifest.inputs.values())
    n_out = sum(p.size for p in manifest.outputs.values())
    expected = expected_tensors(manifest.network, n_in, n_out)
    tensors = read_safetensors_header(path)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise InvalidWeights(
            f"{path.name}: tensors do not match arch {manifest.network.arch!r} for {n_in} inputs "
            f"and {n_out} outputs: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for name, shape in expected.items():
        info = tensors[name]
        if info.shape != shape:
            raise InvalidWeights(
                f"{path.name}: tensor {name!r} has shape {list(info.shape)}, expected {list(shape)}"
            )
        if info.dtype != manifest.network.dtype:
            raise InvalidWeights(
                f"{path.name}: tensor {name!r} is {info.dtype} but the network declares "
                f"dtype {manifest.network.dtype}: save it as {manifest.network.dtype}"
            )
    _check_finite(path, tensors)


def _check_finite(path: Path, tensors: dict[str, TensorInfo]) -> None:
    import numpy as np  # only network modules need it: keep plain imports light

    with open(path, "rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
    base = 8 + header_len
    data = np.memmap(path, dtype=np.uint8, mode="r")
    for name, info in tensors.items():
        chunk = data[base + info.start : base + info.end]
        if info.dtype == "bfloat16":  # finite iff the 8 exponent bits are not all ones
            finite = bool(np.all((chunk.view("<u2") & 0x7F80) != 0x7F80))
        else:
            finite = bool(np.isfinite(chunk.view("<" + np.dtype(info.dtype).str[1:])).all())
        if not finite:
            raise InvalidWeights(f"{path.name}: tensor {name!r} holds NaN or Inf values")


def _allowed_files(manifest: Manifest) -> set[str]:
    allowed = {MANIFEST_FILE} | OPTIONAL_FILES
    if manifest.weights:
        allowed.add(manifest.weights)
    if manifest.kind == "hybrid":
        allowed.add(LOCK_FILE)
    return allowed


def _check_entry(entry: os.DirEntry[str], allowed: set[str], manifest: Manifest) -> Path:
    """One directory entry: a regular, allowed file within its size limit (from ``stat``)."""
    info = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        raise InvalidModule(
            f"{entry.path!r} is a symlink: a module holds only regular files, copy it in"
        )
    if not stat.S_ISREG(info.st_mode):
        raise InvalidModule(f"{entry.path!r} is not a regular file: remove it from the module")
    if entry.name not in allowed:
        raise InvalidModule(
            f"{entry.path!r} is not part of a {manifest.kind} module (allowed: "
            f"{', '.join(sorted(allowed))}): remove it"
        )
    limit = MAX_FILE_BYTES.get(entry.name, MAX_WEIGHTS_BYTES)
    if info.st_size > limit:
        raise InvalidModule(
            f"{entry.path!r} is {info.st_size:,} bytes, more than the {limit:,} it may hold: "
            "trim it"
        )
    return Path(entry.path)


def scan_module(
    directory: str | Path, *, parts: PartLookup | None = None
) -> tuple[Manifest, list[FileEntry]]:
    """Validate a module directory and hash its files.

    Args:
        directory: the module directory.
        parts: for a hybrid, how to find its parts' published manifests (a registry's);
            without it the hybrid is checked on its own files only.

    Returns:
        The manifest and one :class:`FileEntry` per file, sorted by path.

    Raises:
        InvalidModule: a missing, stray, symlinked, non-regular or oversized file; a hybrid's
            lock that is not JSON, lies about ``requires``, or pins another digest.
        InvalidManifest: the manifest does not validate.
        InvalidWeights: weights are unsafe or do not fit the architecture.
        GraphError, InterfaceMismatch: a hybrid's wiring the builder would refuse.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InvalidModule(f"{str(directory)!r} is not a directory: give a module directory")
    manifest_path = root / MANIFEST_FILE
    if manifest_path.is_file() and manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidModule(
            f"{str(manifest_path)!r} is {manifest_path.stat().st_size:,} bytes, more than the "
            f"{MAX_MANIFEST_BYTES:,} a manifest may hold: trim it"
        )
    manifest = load_manifest(root)
    allowed = _allowed_files(manifest)
    present = [
        _check_entry(entry, allowed, manifest)
        for entry in sorted(os.scandir(root), key=lambda e: e.name)
    ]
    needed = {manifest.weights} if manifest.weights else set()
    needed |= {LOCK_FILE} if manifest.kind == "hybrid" else set()
    for name in sorted(needed - {p.name for p in present}):
        raise InvalidModule(f"{str(root / name)!r} is missing: the manifest requires it")
    if manifest.kind == "network":
        assert manifest.weights is not None
        check_weights(root / manifest.weights, manifest)
    if manifest.kind == "hybrid":
        check_hybrid(root, manifest, parts)
    return manifest, [hash_file(p) for p in present]


def registry_parts(registry: Registry) -> PartLookup:
    """A :data:`PartLookup` over ``registry`` (what publish and CI check hybrids against)."""
    from modreg.errors import ModuleNotFound

    def lookup(name: str, version: str) -> tuple[str, Manifest] | None:
        try:
            record, manifest = registry.manifest(f"{name}@{version}")
        except ModuleNotFound:
            return None
        return record.digest, manifest

    return lookup


def check_hybrid(root: Path, manifest: Manifest, parts: PartLookup | None = None) -> None:
    """Check a hybrid directory as the builder would, without building it.

    Raises:
        InvalidModule: the lock is not a lockfile, disagrees with ``requires``, or (with
            ``parts``) pins a digest the registry does not hold for that version.
        InvalidWeights: the weights are not safetensors, or hold tensors no part or trainable
            constant owns.
        GraphError, InterfaceMismatch: see :func:`modreg.spec.graph.check_wiring` and
            :func:`modreg.spec.graph.check_joints`.
    """
    from modreg.spec.graph import check_joints, check_lock, check_wiring, parse_lock

    assert manifest.graph is not None and manifest.requires is not None
    lock_path = root / LOCK_FILE
    source = f"{manifest.ref}:{LOCK_FILE}"  # not the path: publish checks a staged copy
    lock = parse_lock(read_bounded(lock_path, MAX_FILE_BYTES[LOCK_FILE]), source=source)
    check_lock(lock, manifest.requires)
    check_wiring(manifest.graph, dict(manifest.inputs), dict(manifest.outputs))
    if manifest.weights:
        _check_hybrid_weights(root / manifest.weights, manifest)
    found = _part_ports(manifest, lock, parts) if parts is not None else None
    if found is not None:
        ports = (
            {n: p.unit for n, p in manifest.inputs.items()},
            {n: p.unit for n, p in manifest.outputs.items()},
        )
        check_joints(manifest.graph, ports, found)


def _part_ports(
    manifest: Manifest, lock: LockFile, parts: PartLookup
) -> dict[str, tuple[dict[str, str], dict[str, str]]] | None:
    """Each part's (input units, output units) from its pinned version; None if one is absent."""
    assert manifest.graph is not None
    ports: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for part, spec in manifest.graph.parts.items():
        pin = lock.modules[spec.module]
        published = parts(spec.module, pin.version)
        if published is None:
            return None
        digest, part_manifest = published
        if digest != pin.digest:
            raise IntegrityError(
                f"{LOCK_FILE} pins {spec.module}@{pin.version} with digest {pin.digest[:23]}... "
                f"but the registry holds {digest[:23]}...: save the hybrid again against the "
                "published part"
            )
        ports[part] = (
            {n: p.unit for n, p in part_manifest.inputs.items()},
            {n: p.unit for n, p in part_manifest.outputs.items()},
        )
    return ports


def _check_hybrid_weights(path: Path, manifest: Manifest) -> None:
    """A hybrid's weights: safetensors, tensors of its parts or trainable constants, finite."""
    assert manifest.graph is not None
    tensors = read_safetensors_header(path)
    graph = manifest.graph
    for name, info in tensors.items():
        part = name.split(".")[1] if name.startswith("parts.") and name.count(".") >= 2 else None
        constant = graph.constants.get(name.removeprefix("const_"))
        if part is not None and part in graph.parts:
            continue
        if name.startswith("const_") and constant is not None and constant.trainable:
            if info.shape != constant.shape:
                raise InvalidWeights(
                    f"{path.name}: tensor {name!r} has shape {list(info.shape)}, but constant "
                    f"{name[6:]!r} has shape {list(constant.shape)}"
                )
            continue
        raise InvalidWeights(
            f"{path.name}: tensor {name!r} belongs to no part and no trainable constant of the "
            f"graph (parts {sorted(graph.parts)}): save the hybrid again"
        )
    _check_finite(path, tensors)
