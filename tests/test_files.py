"""Module directory validation: stray files, symlinks and unsafe or mismatched weights."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modreg._content import tree_digest
from modreg._files import read_safetensors_header, scan_module
from modreg.errors import InvalidModule, InvalidWeights

from ._helpers import write_network_module


def test_valid_network_module_scans(tmp_path: Path) -> None:
    manifest, entries = scan_module(write_network_module(tmp_path / "m"))
    assert manifest.kind == "network"
    assert [e.path for e in entries] == ["modreg.yaml", "weights.safetensors"]
    assert tree_digest(entries).startswith("sha256:")


def test_digest_is_reproducible(tmp_path: Path) -> None:
    a = scan_module(write_network_module(tmp_path / "a"))[1]
    b = scan_module(write_network_module(tmp_path / "b"))[1]
    assert tree_digest(a) == tree_digest(b)


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/modreg-pwned",))


def test_pickle_renamed_safetensors_is_refused_unloaded(tmp_path: Path) -> None:
    module = write_network_module(tmp_path / "m")
    (module / "weights.safetensors").write_bytes(pickle.dumps({"w": _Boom()}))
    with pytest.raises(InvalidWeights, match="not a safetensors file"):
        scan_module(module)
    assert not Path("/tmp/modreg-pwned").exists()


def _weights(module: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return dict(load_file(str(module / "weights.safetensors")))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda w: w.pop("layers.0.bias"), "missing"),
        (lambda w: w.__setitem__("extra", np.zeros(2, np.float32)), "unexpected"),
        (lambda w: w.__setitem__("layers.0.weight", np.zeros((5, 2), np.float32)), "shape"),
        (lambda w: w.__setitem__("layers.1.bias", np.array([np.nan], np.float32)), "NaN"),
        (lambda w: w.__setitem__("layers.1.bias", np.array([np.inf], np.float32)), "Inf"),
        (lambda w: w.__setitem__("layers.1.bias", np.zeros(1, np.float64)), "float64"),
    ],
)
def test_bad_weights(tmp_path: Path, mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    module = write_network_module(tmp_path / "m")
    weights = _weights(module)
    mutate(weights)
    save_file(weights, str(module / "weights.safetensors"))
    with pytest.raises(InvalidWeights, match=match):
        scan_module(module)


def test_truncated_weights(tmp_path: Path) -> None:
    module = write_network_module(tmp_path / "m")
    path = module / "weights.safetensors"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(InvalidWeights, match=r"truncated|damaged"):
        read_safetensors_header(path)


def test_missing_weights(tmp_path: Path) -> None:
    module = write_network_module(tmp_path / "m")
    (module / "weights.safetensors").unlink()
    with pytest.raises(InvalidModule, match="missing"):
        scan_module(module)


def test_stray_file_refused(tmp_path: Path) -> None:
    module = write_network_module(tmp_path / "m")
    (module / "model.pt").write_bytes(b"x")
    with pytest.raises(InvalidModule, match=r"model\.pt"):
        scan_module(module)


def test_symlink_leaving_module_refused(tmp_path: Path) -> None:
    module = write_network_module(tmp_path / "m")
    (tmp_path / "outside.md").write_text("secret")
    (module / "README.md").symlink_to(tmp_path / "outside.md")
    with pytest.raises(InvalidModule, match="symlink"):
        scan_module(module)


def test_subdirectory_refused(tmp_path: Path) -> None:
    module = write_network_module(tmp_path / "m")
    (module / "sub").mkdir()
    with pytest.raises(InvalidModule, match="not a regular file"):
        scan_module(module)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidModule, match="not a directory"):
        scan_module(tmp_path / "nope")
