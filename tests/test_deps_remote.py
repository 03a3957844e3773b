"""Dependents, locks and signatures on every store backend, the S3 one a real local server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modreg.errors import SignatureError
from tests._deps_helpers import drag_versions, write_force_data, write_hybrid
from tests._helpers import write_keypair

_backends = pytest.importorskip("tests._backends")

CHECK = {"data": "data/force.csv", "metric": "rmse", "tolerance": "1%", "samples": 100}
WIRES = {"drag.v": "v", "drag.rho": "1.2"}


@pytest.fixture(params=_backends.BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    server = request.getfixturevalue("s3_env") if request.param == "s3" else None
    return _backends.make_backend(request.param, tmp_path, server).registry()


def test_dependents_and_lock_upgrade(registry: Any, tmp_path: Path) -> None:
    from modreg.deps.dependents import check_dependents
    from modreg.deps.lock import upgrade_lock

    drag_versions(tmp_path, registry, ("1.0.0", None))
    ball = write_hybrid(tmp_path / "ball", registry, "test/ball", {"drag": "physics/drag"},
                        wires=WIRES, checks=[CHECK])  # fmt: skip
    registry.publish(ball)
    drag_versions(tmp_path, registry, ("1.0.1", "good"), ("1.1.0", "off"))
    write_force_data(tmp_path / "data" / "force.csv")
    verdicts = {
        version: check_dependents(registry, f"physics/drag@{version}", data_root=tmp_path)
        for version in ("1.0.1", "1.1.0")
    }
    assert [r.status for r in verdicts["1.0.1"].results] == ["pass"]
    assert [r.status for r in verdicts["1.1.0"].results] == ["fail"]
    result = upgrade_lock(ball, registry, data_root=tmp_path)
    assert result.pins["physics/drag"].version == "1.0.1"


def test_signatures_and_trusted_pulls(registry: Any, tmp_path: Path) -> None:
    from modreg.signing import check_signatures, load_trusted_keys, sign, trusted_pull

    private, public = write_keypair(tmp_path)
    registry.publish(Path(__file__).resolve().parent.parent / "modules" / "drag-mlp")
    registry.publish(Path(__file__).resolve().parent.parent / "modules" / "gravity")
    ref = "examples/drag-mlp@0.1.0"
    digest = registry.resolve(ref).digest
    assert sign(registry, ref, private).created
    assert registry.resolve(ref).digest == digest
    keys = load_trusted_keys([public])
    assert trusted_pull(registry, ref, to=tmp_path / "ok", keys=keys).digest == digest
    with pytest.raises(SignatureError, match=r"refusing physics/gravity@1\.0\.0"):
        trusted_pull(registry, "physics/gravity", to=tmp_path / "refused", keys=keys)
    assert not (tmp_path / "refused").exists()
    assert [c.status for c in check_signatures(registry, keys)] == ["ok"]
