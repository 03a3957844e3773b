"""``modreg tree`` and ``modreg lineage``: dependencies down, provenance up, users across."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modreg.errors import DependencyError
from tests._deps_helpers import drag_versions, write_hybrid
from tests._helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
WIRES = {"drag.v": "v", "drag.rho": "1.2"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def registry(tmp_path: Path, registry_path: Path) -> Any:
    """drag-mlp (a teacher), drag 1.0.0 distilled from it, a ball and a team over the ball."""
    from modreg.registry import Registry

    registry = Registry(registry_path)
    teacher = registry.publish(ROOT / "modules" / "drag-mlp")
    drag_versions(tmp_path, registry, ("0.9.0", None))
    folder = tmp_path / "drag-1.0.0"
    folder.mkdir()
    manifest = yaml.safe_load((ROOT / "modules" / "drag" / "modreg.yaml").read_text())
    manifest["provenance"] = {
        "distilled_from": teacher.ref,
        "teacher_digest": teacher.digest,
        "dataset": "flights.csv",
        "dataset_sha256": "sha256:" + "12" * 32,
        "mlflow_run_key": "a1b2c3d4e5f60718",
        "modreg_version": "0.1.0",
        "tool": "modreg distill",
        "seed": 0,
    }
    (folder / "modreg.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    registry.publish(folder)
    ball = write_hybrid(tmp_path / "ball", registry, "test/ball", {"drag": "physics/drag"},
                        wires=WIRES, requires={"physics/drag": "~=1.0"})  # fmt: skip
    registry.publish(ball)
    old = write_hybrid(tmp_path / "old", registry, "test/old", {"drag": "physics/drag"},
                       wires=WIRES, requires={"physics/drag": "<1"})  # fmt: skip
    registry.publish(old)
    team = write_hybrid(tmp_path / "team", registry, "test/team", {"ball": "test/ball"})
    registry.publish(team)
    return registry


def test_tree_walks_locks_down_to_leaves(registry: Any) -> None:
    from modreg.deps.tree import dependency_tree, tree_text

    node = dependency_tree(registry, "test/team")
    (ball,) = node.children
    (drag,) = ball.children
    assert (ball.ref, ball.requires, drag.ref, drag.requires) == (
        "test/ball@1.0.0",
        ">=1.0.0,<2",
        "physics/drag@1.0.0",
        "~=1.0",
    )
    assert drag.digest == registry.resolve("physics/drag@1.0.0").digest
    lines = tree_text(node)
    assert lines[0].startswith("test/team@1.0.0  hybrid  sha256:")
    assert lines[1].startswith("└── test/ball@1.0.0 (requires >=1.0.0,<2)  hybrid")
    assert lines[2].startswith("    └── physics/drag@1.0.0 (requires ~=1.0)  equation")


def test_lineage_follows_the_teacher_and_finds_admitting_users(registry: Any) -> None:
    from modreg.deps.lineage import lineage, lineage_text

    item = lineage(registry, "physics/drag@1.0.0")
    assert (item.teacher, item.teacher_in_registry) == ("examples/drag-mlp@0.1.0", True)
    assert item.upstream is not None
    assert item.upstream.ref == "examples/drag-mlp@0.1.0"
    assert item.data["dataset_sha256"] == "sha256:" + "12" * 32
    assert item.run == {"mlflow_run_key": "a1b2c3d4e5f60718"}
    assert item.tool == {"tool": "modreg distill", "modreg_version": "0.1.0"}
    assert item.other == {"seed": "0"}
    # test/old requires <1: it depends on drag, but not on this version
    assert [(u.ref, u.requires, u.locked) for u in item.users] == [
        ("test/ball@1.0.0", "~=1.0", "1.0.0")
    ]
    text = "\n".join(lineage_text(item))
    assert "teacher  examples/drag-mlp@0.1.0 sha256:" in text
    assert "used by  test/ball@1.0.0 (requires ~=1.0, locked to 1.0.0)" in text


def test_a_teacher_digest_the_registry_lacks_is_flagged(registry: Any, tmp_path: Path) -> None:
    from modreg.deps.lineage import lineage

    folder = tmp_path / "drag-1.0.1"
    folder.mkdir()
    manifest = yaml.safe_load((tmp_path / "drag-1.0.0" / "modreg.yaml").read_text())
    manifest["version"] = "1.0.1"
    manifest["provenance"]["teacher_digest"] = "sha256:" + "00" * 32
    (folder / "modreg.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    registry.publish(folder)
    item = lineage(registry, "physics/drag@1.0.1")
    assert (item.teacher_in_registry, item.upstream) == (False, None)


def test_a_cycle_in_requires_is_refused(registry: Any, tmp_path: Path) -> None:
    from modreg.deps.tree import dependency_tree

    a1 = write_hybrid(tmp_path / "a1", registry, "test/a", {"drag": "physics/drag"}, wires=WIRES)
    registry.publish(a1)
    registry.publish(write_hybrid(tmp_path / "b", registry, "test/b", {"a": "test/a"}))
    a2 = write_hybrid(tmp_path / "a2", registry, "test/a", {"drag": "physics/drag", "b": "test/b"},
                      version="1.1.0", wires=WIRES | {"b.v": "v"})  # fmt: skip
    registry.publish(a2)
    with pytest.raises(DependencyError, match=r"cycle in requires: test/a -> test/b -> test/a"):
        dependency_tree(registry, "test/a@1.1.0")


def test_cli_text_json_and_png(
    registry: Any, registry_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "tree.png"
    code, out, _ = run_cli(["tree", "test/team", "-r", registry_path, "--png", png], capsys)
    assert code == 0
    assert "physics/drag@1.0.0" in out
    assert png.read_bytes().startswith(PNG_MAGIC)
    code, out, _ = run_cli(["tree", "test/team", "-r", registry_path, "--json"], capsys)
    assert json.loads(out)["children"][0]["children"][0]["ref"] == "physics/drag@1.0.0"
    png = tmp_path / "lineage.png"
    args = ["lineage", "physics/drag@1.0.0", "-r", registry_path]
    code, out, _ = run_cli([*args, "--json", "--png", png], capsys)
    data = json.loads(out)
    assert data["teacher"]["in_registry"] is True
    assert data["users"][0]["ref"] == "test/ball@1.0.0"
    assert png.read_bytes().startswith(PNG_MAGIC)
    code, _, err = run_cli(["tree", "test/nothing", "-r", registry_path], capsys)
    assert code == 1
    assert err.startswith("error: no module named 'test/nothing'")
