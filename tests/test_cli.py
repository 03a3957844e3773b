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
    ("args", "match", "code"),
    [
        (["pull", "test/net@>=2"], "available: 1.0.0", 1),
        (["pull", "test/nope"], "no module named 'test/nope'", 1),
        (["pull", "../evil"], "'../evil'", 1),
        (["pull", "test/net@1.0.0 "], "whitespace", 1),
        (["show", "test/net@=>1"], "invalid version spec", 1),
        (["yank", "test/net"], "invalid version", 1),
        (["publish", "does/not/exist"], "not a directory", 1),
        (["pull", "test/net", "--registry", "s3://bucket/x"], "no AWS credentials", 1),
        (["pull", "test/net", "--registry", "gs://bucket/x"], "not supported", 1),
        (["pull", "test/net", "--registry", "s3://B!/x"], "not a valid bucket name", 1),
        # options that contradict are a usage error (UsageError): exit 2, still one line
        (["copy", "test/net@1.0.0"], "--to REGISTRY", 2),
        (["yank", "test/net@1.0.0", "--reason", "x" * 1001], "under 1000", 2),
    ],
)
def test_bad_references(
    args: list[str],
    match: str,
    code: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODREG_REGISTRY", str(tmp_path / "reg"))
    run(["publish", str(write_network_module(tmp_path / "m"))], capsys)
    found, out, err = run(args, capsys)
    assert found == code and out == ""
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


# -- one CLI contract: --json everywhere, --registry anywhere, --version, exit codes ----------
def _leaf_commands() -> dict[str, object]:
    import typer.main

    from modreg.cli._app import app

    def walk(command: object, path: str) -> dict[str, object]:
        children = getattr(command, "commands", None)
        if children is None:
            return {path: command}
        found: dict[str, object] = {}
        for name, child in children.items():
            found |= walk(child, f"{path} {name}".strip())
        return found

    return walk(typer.main.get_command(app), "")


def test_every_command_has_the_one_json_option() -> None:
    from modreg.cli._options import JsonOption

    shared = JsonOption.__metadata__[0].help
    commands = _leaf_commands()
    assert {"publish", "pull", "copy", "yank", "unyank", "gc", "sign", "check ci"} <= set(commands)
    for name, command in commands.items():
        found = [p for p in command.params if "--json" in p.opts]  # type: ignore[attr-defined]
        assert len(found) == 1, f"modreg {name} has no --json"
        assert found[0].help == shared, f"modreg {name} defines its own --json"


def test_json_output_of_the_writing_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], module_copy: Callable[[str], Path]
) -> None:
    reg = ["--registry", str(tmp_path / "reg")]
    code, out, _ = run(["publish", str(module_copy("gravity")), "--json", *reg], capsys)
    published = json.loads(out)
    assert code == 0 and published["ref"] == "physics/gravity@1.0.0" and published["created"]
    code, out, err = run(
        ["pull", "physics/gravity", "--to", tmp_path / "d", "--json", *reg], capsys
    )
    pulled = {"ref": published["ref"], "digest": published["digest"], "path": str(tmp_path / "d")}
    assert (code, json.loads(out), err) == (0, pulled, "")  # stdout is the one object
    code, out, _ = run(
        ["copy", "physics/gravity@1.0.0", "--to", tmp_path / "m", "--json", *reg], capsys
    )
    assert json.loads(out) == [published]
    code, out, _ = run(
        ["yank", "physics/gravity@1.0.0", "--reason", "wrong G", "--json", *reg], capsys
    )
    assert {k: json.loads(out)[k] for k in ("ref", "yanked", "reason", "step")} == {
        "ref": "physics/gravity@1.0.0",
        "yanked": True,
        "reason": "wrong G",
        "step": 1,
    }
    code, out, _ = run(["unyank", "physics/gravity@1.0.0", "--json", *reg], capsys)
    assert (json.loads(out)["yanked"], json.loads(out)["step"]) == (False, 2)
    code, out, _ = run(["gc", "--json", *reg], capsys)
    assert json.loads(out) == {"temporaries_removed": 0, "objects_removed": 0}


def test_registry_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], module_copy: Callable[[str], Path]
) -> None:
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    assert run(["--registry", first, "publish", str(module_copy("gravity"))], capsys)[0] == 0
    assert (tmp_path / "first" / "records").is_dir()
    code, out, _ = run(["list", "--json", "--registry", first], capsys)
    assert [row["name"] for row in json.loads(out)] == ["physics/gravity"]
    code, out, _ = run(["-r", first, "check", "dependents", "physics/gravity", "--json"], capsys)
    assert code == 0, out
    # both given: the command's own wins
    code, out, _ = run(["--registry", first, "list", "--json", "--registry", second], capsys)
    assert (code, out) == (0, "[]\n")


def test_yank_reasons_in_list_and_show_and_unyank(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], module_copy: Callable[[str], Path]
) -> None:
    reg = ["--registry", str(tmp_path / "reg")]
    run(["publish", str(module_copy("gravity")), *reg], capsys)
    run(["publish", str(module_copy("drag")), *reg], capsys)
    run(["yank", "physics/gravity@1.0.0", "--reason", "wrong G", *reg], capsys)
    code, out, _ = run(["yank", "physics/gravity@1.0.0", "--reason", "G off by 1e3", *reg], capsys)
    assert (code, out) == (0, "yanked physics/gravity@1.0.0\n")
    code, out, _ = run(["list", *reg], capsys)
    assert "yanked physics/gravity@1.0.0: G off by 1e3" in out and "wrong G" not in out
    code, out, _ = run(["show", "physics/gravity@1.0.0", *reg], capsys)
    assert "YANKED" in out and "G off by 1e3" in out
    code, out, _ = run(["show", "physics/gravity@1.0.0", "--json", *reg], capsys)
    assert json.loads(out)["yanked"]["reason"] == "G off by 1e3"
    code, out, _ = run(["show", "physics/drag", "--json", *reg], capsys)
    assert json.loads(out)["yanked"] is None
    code, out, _ = run(["unyank", "physics/gravity@1.0.0", *reg], capsys)
    assert (code, out) == (0, "unyanked physics/gravity@1.0.0\n")
    code, out, _ = run(["pull", "physics/gravity@>=1", *reg], capsys)
    assert code == 0
    code, out, _ = run(["show", "physics/gravity@1.0.0", *reg], capsys)
    assert "YANKED" not in out


def test_list_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], module_copy: Callable[[str], Path]
) -> None:
    reg = ["--registry", str(tmp_path / "reg")]
    run(["publish", str(module_copy("gravity")), *reg], capsys)
    run(["publish", str(write_network_module(tmp_path / "n")), *reg], capsys)
    code, out, _ = run(["list", "physics/", "--json", *reg], capsys)
    assert [row["name"] for row in json.loads(out)] == ["physics/gravity"]
    code, out, _ = run(["list", "--search", "NET", "--json", *reg], capsys)
    assert [row["name"] for row in json.loads(out)] == ["test/net"]
    code, out, err = run(["list", "chem/", *reg], capsys)
    assert (code, out) == (0, "") and "no module matches" in err


def test_unexpected_error_exits_70(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modreg.registry import Registry

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Registry, "list", broken)
    code, out, err = run(["list", "--registry", tmp_path / "reg"], capsys)
    assert (code, out) == (70, "")
    assert err == "error: unexpected RuntimeError: boom (rerun with MODREG_DEBUG=1 and report it)\n"


def test_real_process_version_and_exit_codes(tmp_path: Path) -> None:
    import modreg

    env = {**os.environ, "MODREG_REGISTRY": str(tmp_path / "reg")}
    version = _subprocess(["--version"], env)
    assert (version.returncode, version.stdout) == (0, f"modreg {modreg.__version__}\n")
    usage = _subprocess(["copy", "physics/nothing@1.0.0"], env)  # a library usage error
    assert usage.returncode == 2 and usage.stderr.startswith("error: give one NAME@SPEC")
    gate = _subprocess(["verify", "--registry", str(tmp_path)], env)  # not a registry
    assert gate.returncode == 1
