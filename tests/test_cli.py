"""The ``modreg`` command: happy paths, and every bad input as one line with a non-zero exit."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from ._helpers import run_cli, write_network_module

GRAVITY = (Path(__file__).parent.parent / "modules" / "gravity" / "modreg.yaml").read_text()


run = run_cli


def snapshot(registry: Path) -> list[tuple[str, bytes]]:
    if not registry.exists():
        return []
    files = sorted(p.relative_to(registry) for p in registry.rglob("*") if p.is_file())
    return [(str(p), (registry / p).read_bytes()) for p in files if p.parts[0] != "tmp"]


def test_publish_pull_list_show_verify_yank(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], module_copy: Callable[[str], Path]
) -> None:
    reg = ["--registry", str(tmp_path / "reg")]
    code, out, _ = run(["publish", str(module_copy("gravity")), *reg], capsys)
    assert code == 0
    assert out.startswith("published physics/gravity@1.0.0 sha256:")
    assert len(out.split()[-1]) == len("sha256:") + 64

    code, out, _ = run(
        ["pull", "physics/gravity@>=1,<2", "--to", str(tmp_path / "deps"), *reg], capsys
    )
    assert (code, out.strip()) == (0, str(tmp_path / "deps"))
    assert (tmp_path / "deps" / "modreg.yaml").read_text() == GRAVITY

    code, out, _ = run(["list", *reg], capsys)
    assert code == 0 and "physics/gravity" in out and "equation" in out
    code, out, _ = run(["list", "--json", *reg], capsys)
    assert json.loads(out)[0]["latest"] == "1.0.0"

    code, out, _ = run(["show", "physics/gravity@1.0.0", *reg], capsys)
    assert code == 0
    for text in ("m1", "kg", "[1, 10]", "G", "modreg.yaml", "equation"):
        assert text in out
    code, out, _ = run(["show", "physics/gravity", "--json", *reg], capsys)
    assert json.loads(out)["manifest"]["equation"]["F"] == "G * m1 * m2 / r**2"

    code, out, _ = run(["verify", *reg], capsys)
    assert code == 0 and "ok" in out
    code, out, _ = run(["yank", "physics/gravity@1.0.0", *reg], capsys)
    assert (code, out.strip()) == (0, "yanked physics/gravity@1.0.0")
    code, _, err = run(["pull", "physics/gravity@>=1", *reg], capsys)
    assert code == 1 and "1.0.0 (yanked)" in err


def test_verify_exit_code_on_damage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = ["--registry", str(tmp_path / "reg")]
    assert run(["publish", str(write_network_module(tmp_path / "m")), *reg], capsys)[0] == 0
    victim = next(p for p in (tmp_path / "reg" / "objects").rglob("*") if p.is_file())
    victim.write_bytes(victim.read_bytes() + b"!")
    code, out, _ = run(["verify", *reg], capsys)
    assert code == 1 and "BAD object" in out and "1 problem" in out


def test_registry_from_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODREG_REGISTRY", str(tmp_path / "env-reg"))
    assert run(["publish", str(write_network_module(tmp_path / "m"))], capsys)[0] == 0
    assert (tmp_path / "env-reg" / "records").is_dir()


def _yaml(text: str) -> Callable[[Path], None]:
    def edit(module: Path) -> None:
        (module / "modreg.yaml").write_text(text)

    return edit


def _replace(old: str, new: str) -> Callable[[Path], None]:
    def edit(module: Path) -> None:
        path = module / "modreg.yaml"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new))

    return edit


def _weights(mutate: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path], None]:
    def edit(module: Path) -> None:
        path = module / "weights.safetensors"
        tensors = dict(load_file(str(path)))
        mutate(tensors)
        save_file(tensors, str(path))

    return edit


def _raw_weights(data: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(module: Path) -> None:
        path = module / "weights.safetensors"
        path.write_bytes(data(path.read_bytes()))

    return edit


def _symlink(module: Path) -> None:
    (module.parent / "secret").write_text("x")
    os.symlink(module.parent / "secret", module / "README.md")


EQUATION_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "malformed yaml": (_yaml("name: [unclosed\n"), "malformed YAML"),
    "duplicate key": (_replace("kind: equation", "kind: equation\nkind: network"), "duplicate"),
    "unknown field": (
        _replace("kind: equation", "kind: equation\nflavour: spicy"),
        "unknown field",
    ),
    "missing outputs": (_replace("outputs:\n  F:  {unit: N}\n", ""), "outputs"),
    "name ../evil": (_replace("physics/gravity", "../evil"), "'../evil'"),
    "name /abs": (_replace("physics/gravity", "/abs"), "'/abs'"),
    "name uppercase": (_replace("physics/gravity", "Physics/Gravity"), "lowercase"),
    "name empty": (_replace("name: physics/gravity", "name: ''"), "empty"),
    "version newline": (_replace("version: 1.0.0", 'version: "1.0.0\\n"'), "invalid version"),
    "version injection": (
        _replace("version: 1.0.0", 'version: "1.0.0; rm -rf /"'),
        "invalid version",
    ),
    "version local": (_replace("version: 1.0.0", "version: 1.0.0+local"), "local labels"),
    "version latest": (_replace("version: 1.0.0", "version: latest"), "'latest'"),
    "unknown unit": (_replace("{unit: kg,", "{unit: kilogrammes,"), "kilogrammes"),
    "wrong dimension": (_replace("r**2", "r**3"), "has unit"),
    "code __import__": (
        _replace("G * m1 * m2 / r**2", "__import__('os').system('touch /tmp/modreg-pwned')"),
        "invalid expression",
    ),
    "attribute": (_replace("G * m1 * m2 / r**2", "m1.__class__"), "invalid expression"),
    "lambda": (_replace("G * m1 * m2 / r**2", '"(lambda: 1)()"'), "invalid expression"),
    "oversized": (_replace("G * m1 * m2 / r**2", "G*m1*m2/r**2" + " + 0*m1" * 900), "expression"),
    "huge exponent": (_replace("r**2", "r**10**10"), "expression"),
    "range order": (_replace("range: [1.0, 5.0]", "range: [5.0, 1.0]"), "low < high"),
}

NETWORK_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "pickle weights": (_raw_weights(lambda _: pickle.dumps({"w": [1.0]})), "not a safetensors"),
    "truncated weights": (_raw_weights(lambda b: b[:-9]), "truncated"),
    "wrong shape": (
        _weights(lambda w: w.__setitem__("layers.0.weight", np.zeros((3, 2), np.float32))),
        "shape",
    ),
    "nan weights": (
        _weights(lambda w: w.__setitem__("layers.1.bias", np.array([np.nan], np.float32))),
        "NaN",
    ),
    "missing weights": (lambda m: (m / "weights.safetensors").unlink(), "missing"),
    "symlink": (_symlink, "symlink"),
    "stray pickle": (lambda m: (m / "model.pkl").write_bytes(b"x"), "model.pkl"),
}


def _check_refused(code: int, out: str, err: str, match: str, before: object, reg: Path) -> None:
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0], lines[0]
    assert "Traceback" not in err
    assert snapshot(reg) == before


@pytest.mark.parametrize("case", EQUATION_CASES)
def test_bad_equation_module_refused(
    case: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    module_copy: Callable[[str], Path],
) -> None:
    reg = tmp_path / "reg"
    run(["publish", str(write_network_module(tmp_path / "other")), "--registry", str(reg)], capsys)
    before = snapshot(reg)
    module = module_copy("gravity")
    edit, match = EQUATION_CASES[case]
    edit(module)
    _check_refused(
        *run(["publish", str(module), "--registry", str(reg)], capsys), match, before, reg
    )
    assert not Path("/tmp/modreg-pwned").exists()


@pytest.mark.parametrize("case", NETWORK_CASES)
def test_bad_network_module_refused(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = tmp_path / "reg"
    run(
        [
            "publish",
            str(write_network_module(tmp_path / "ok", name="test/ok")),
            "--registry",
            str(reg),
        ],
        capsys,
    )
    before = snapshot(reg)
    module = write_network_module(tmp_path / "m")
    edit, match = NETWORK_CASES[case]
    edit(module)
    _check_refused(
        *run(["publish", str(module), "--registry", str(reg)], capsys), match, before, reg
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["pull", "test/net@>=2"], "available: 1.0.0"),
        (["pull", "test/nope"], "no module named 'test/nope'"),
        (["pull", "../evil"], "'../evil'"),
        (["pull", "test/net@1.0.0 "], "whitespace"),
        (["show", "test/net@=>1"], "invalid version spec"),
        (["yank", "test/net"], "invalid version"),
        (["publish", "does/not/exist"], "not a directory"),
        (["pull", "test/net", "--registry", "gs://bucket/x"], "not supported"),
        (["pull", "test/net", "--registry", "s3://bucket/x"], "no AWS credentials"),
        (["pull", "test/net", "--registry", "s3://B!/x"], "not a valid bucket name"),
    ],
)
def test_bad_references(
    args: list[str],
    match: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODREG_REGISTRY", str(tmp_path / "reg"))
    run(["publish", str(write_network_module(tmp_path / "m"))], capsys)
    code, out, err = run(args, capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and match in err and len(err.strip().splitlines()) == 1


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["publish"], capsys)
    assert code == 2


def _subprocess(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modreg", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_real_process_error_has_no_traceback_unless_debug(tmp_path: Path) -> None:
    env = {**os.environ, "MODREG_REGISTRY": str(tmp_path / "reg")}
    result = _subprocess(["pull", "physics/nothing"], env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no module named") and "Traceback" not in result.stderr
    debug = _subprocess(["pull", "physics/nothing"], {**env, "MODREG_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_real_process_round_trip(tmp_path: Path, module_copy: Callable[[str], Path]) -> None:
    env = {**os.environ, "MODREG_REGISTRY": str(tmp_path / "reg")}
    published = _subprocess(["publish", str(module_copy("drag"))], env)
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith("published physics/drag@1.0.0 sha256:")
    pulled = _subprocess(["pull", "physics/drag@~=1.0", "--to", str(tmp_path / "d")], env)
    assert pulled.stdout.strip() == str(tmp_path / "d")
