"""What modreg shows: missing extras as one line, module text made safe for a terminal and a figure.

Two defects found by adversarial testing, each as a class:

- an optional dependency that is not installed (``s3``, ``mlflow``, ``pipeline``, ``onnx``)
  surfaced as ``unexpected ModuleNotFoundError``; now a ``ConfigError`` naming the extra;
- untrusted text (provenance, summaries, names) reached the terminal raw (escape sequences,
  a right-to-left override) and a figure as math text (``$\\frac$`` failed ``--png``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from modreg._text import safe_text
from modreg.errors import ConfigError
from tests._helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
S3_URI = "s3://team-bucket/registry"
# which of the two it meets first depends on the command
S3_MISSING = re.compile(
    rf"error: the registry {S3_URI} needs the s3 extra: pip install 'modreg\[s3\]' "
    r"\((boto3|botocore) is missing\)\n"
)
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _absent(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make ``packages`` (and their loaded submodules) unimportable, as if not installed."""
    for name in [n for n in sys.modules if n.partition(".")[0] in packages] + list(packages):
        monkeypatch.setitem(sys.modules, name, None)


# -- 13: a missing extra is one line naming it -------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["show", "physics/gravity"],
        ["publish", str(ROOT / "modules" / "gravity")],
        ["verify"],
        ["gc"],
        ["yank", "physics/gravity@1.0.0"],
        ["tree", "physics/gravity"],
        ["lineage", "physics/gravity"],
        ["check", "dependents", "physics/gravity@1.0.0"],
    ],
    ids=lambda args: args[0] if args[0] != "check" else "check-dependents",
)
def test_an_s3_registry_without_the_s3_extra_names_it(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _absent(monkeypatch, "boto3", "botocore")
    code, out, err = run_cli([*args, "-r", S3_URI], capsys)
    assert (code, out) == (1, "")
    assert S3_MISSING.fullmatch(err), err


def test_copy_to_an_s3_registry_without_the_s3_extra_names_it(
    registry_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from modreg.registry import Registry

    Registry(registry_path).publish(ROOT / "modules" / "gravity")
    _absent(monkeypatch, "boto3", "botocore")
    code, _, err = run_cli(["copy", "--all", "-r", registry_path, "--to", S3_URI], capsys)
    assert code == 1
    assert S3_MISSING.fullmatch(err), err


def test_the_installed_command_says_so_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    """The real thing: a fresh interpreter where boto3 and botocore cannot be imported."""
    code = (
        "import runpy, sys\n"
        "sys.modules['boto3'] = sys.modules['botocore'] = None\n"
        f"sys.argv = ['modreg', 'list', '-r', {S3_URI!r}]\n"
        "runpy.run_module('modreg', run_name='__main__')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "MODREG_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert S3_MISSING.fullmatch(done.stderr), done.stderr


def _tracker() -> None:
    from modreg.tracking import Tracker

    with Tracker("showcase", "train", uri="sqlite:///never.db"):
        pass


def _load_mlflow_model() -> None:
    import modreg.mlflow

    modreg.mlflow.load_model("models:/physics-drag/1")


def _read_parquet(tmp_path: Path) -> None:
    from modreg.distill._dataset import read_table

    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    read_table(tmp_path / "t.parquet")


def _onnx_runner(tmp_path: Path) -> None:
    from modreg.runtime._onnx import OnnxRunner

    OnnxRunner(tmp_path / "m.onnx")


def _names(extra: str, package: str, more: str = "") -> str:
    """The end of the message for a missing ``extra``, as a regex."""
    text = f"needs the {extra} extra: pip install 'modreg[{extra}]' ({package} is missing)"
    return re.escape(text + more) + "$"


@pytest.mark.parametrize(
    ("packages", "call", "message"),
    [
        (("mlflow",), lambda _: _tracker(), _names("mlflow", "mlflow")),
        (("mlflow",), lambda _: _load_mlflow_model(), _names("mlflow", "mlflow")),
        (("pandas", "pyarrow"), _read_parquet, _names("pipeline", "pandas", ", or give a CSV")),
        (("onnxruntime",), _onnx_runner, _names("onnx", "onnxruntime")),
    ],
    ids=["tracking", "mlflow-flavor", "parquet", "onnxruntime"],
)
def test_every_extra_missing_is_a_config_error_naming_it(
    packages: tuple[str, ...],
    call: Any,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _absent(monkeypatch, *packages)
    with pytest.raises(ConfigError, match=message):
        call(tmp_path)


def test_a_broken_install_is_named_like_a_missing_one() -> None:
    from modreg._extras import needs_extra

    broken = ImportError("cannot import name 'Config'", name="botocore.config")
    with (
        pytest.raises(ConfigError, match=_names("s3", "botocore")),
        needs_extra("s3", "the registry s3://b"),
    ):
        raise broken


# -- 14: untrusted text is escaped on a terminal, and plain in a figure ------------------------
ESCAPED = [
    ("\x1b[2J", "\\x1b[2J"),  # C0: clear the screen
    ("\x9b31m", "\\x9b31m"),  # C1: CSI
    ("\x85", "\\x85"),  # C1: next line
    ("\x7f", "\\x7f"),  # DEL
    ("gpj.\u202eexe", "gpj.\\u202eexe"),  # right-to-left override
    ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"),  # embeddings, overrides
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),  # isolates
    ("drag\u200bmlp", "drag\\u200bmlp"),  # zero-width space: another format character
    ("\ufeffname", "\\ufeffname"),  # byte order mark
    ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line and paragraph separators
    ("tag\U000e0041", "tag\\U000e0041"),  # a tag character (invisible)
    ("\ud800", "\\ud800"),  # a lone surrogate (cannot even be printed)
    ("two\nlines\ttab", "two\\nlines\\ttab"),
]
KEPT = ["Newtonian gravity", "Größe ≤ 5 m²", "F = G⋅m₁⋅m₂/r²", "└── √x", "$\\frac$ [bold]"]


@pytest.mark.parametrize(("text", "shown"), ESCAPED)
def test_safe_text_escapes_control_bidi_and_format_characters(text: str, shown: str) -> None:
    assert safe_text(text) == shown


@pytest.mark.parametrize("text", KEPT)
def test_safe_text_keeps_printable_text(text: str) -> None:
    assert safe_text(text) == text


@given(st.text())
def test_safe_text_leaves_nothing_unsafe_and_is_idempotent(text: str) -> None:
    shown = safe_text(text)
    assert not {unicodedata.category(c) for c in shown} & UNSAFE_CATEGORIES
    assert safe_text(shown) == shown


HOSTILE = "\x1b]0;pwned\x07 \u202eexe.gpj $\\frac$ \x85 \u200b\nsecond line"


def _no_raw_unsafe(text: str) -> None:
    lines = text.splitlines()
    assert not [
        line for line in lines if {unicodedata.category(c) for c in line} & UNSAFE_CATEGORIES
    ]


@pytest.fixture
def hostile(tmp_path: Path, registry_path: Path) -> Any:
    """physics/gravity with a hostile summary and provenance (a teacher name, data, a run)."""
    from modreg.registry import Registry

    folder = tmp_path / "gravity"
    folder.mkdir()
    manifest = yaml.safe_load((ROOT / "modules" / "gravity" / "modreg.yaml").read_text())
    manifest["summary"] = "zero\u200bwidth \u202eRLO \x1b[2J"  # short: a table cell
    manifest["provenance"] = {
        "distilled_from": f"teacher{HOSTILE}",
        "dataset": f"$\\frac${HOSTILE}",
        "mlflow_run_key": HOSTILE,
        "modreg_version": "0.1.0",
        HOSTILE: HOSTILE,
    }
    (folder / "modreg.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    registry = Registry(registry_path)
    registry.publish(folder)
    return registry


def test_lineage_shows_hostile_provenance_escaped(
    hostile: Any, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["lineage", "physics/gravity", "-r", registry_path], capsys)
    assert (code, err) == (0, "")
    _no_raw_unsafe(out)
    assert "teacher  teacher\\x1b]0;pwned\\x07 \\u202eexe.gpj" in out
    assert "\\nsecond line" in out
    assert "\x1b" not in out and "\u202e" not in out and "\x85" not in out


def test_lineage_and_tree_png_show_dollars_as_written(
    hostile: Any, registry_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("lineage", "tree"):
        png = tmp_path / f"{command}.png"
        args = [command, "physics/gravity", "-r", registry_path, "--png", png]
        code, out, err = run_cli(args, capsys)
        assert (code, err) == (0, ""), command
        assert png.read_bytes().startswith(PNG_MAGIC)
        _no_raw_unsafe(out)


def test_plots_never_read_math_text_or_latex(tmp_path: Path) -> None:
    """Every text artist with module text: ``$...$`` shown as written, even under usetex."""
    import matplotlib

    from modreg.deps.lineage import Lineage, User, plot_lineage
    from modreg.deps.tree import Node, plot_tree

    node = Node("a$\\frac$", "1.0.0", "sha256:" + "0" * 64, "hybrid")
    node.children = [Node("b$x^{$", "1.0.0", "sha256:" + "1" * 64, "equation", "$>=1$")]
    item = Lineage("x$\\frac$@1", "sha256:" + "2" * 64, "equation", "today", teacher="$\\sqrt$")
    item.data = {"dataset": "$\\frac$"}
    item.users = [User("u$\\frac$@1", "$", None)]
    with matplotlib.rc_context({"text.usetex": True}):  # no LaTeX run for untrusted text
        assert plot_tree(node, tmp_path / "t.png").read_bytes().startswith(PNG_MAGIC)
        assert plot_lineage(item, tmp_path / "l.png").read_bytes().startswith(PNG_MAGIC)


def test_the_pareto_picture_shows_its_title_as_written(tmp_path: Path) -> None:
    """The distill front's title quotes the data path: ``$`` in a file name is no math."""
    from modreg.distill._writer import _plot

    point = SimpleNamespace(complexity=1, rmse=0.5, text="x$\\frac$")
    fits = {"y": SimpleNamespace(pareto=[point], chosen=0)}
    outputs = {"y": SimpleNamespace(unit="m$\\frac$")}
    _plot(tmp_path / "p.png", fits, outputs, "test/y@1.0.0 from data $\\frac$.csv")  # type: ignore[arg-type]
    assert (tmp_path / "p.png").read_bytes().startswith(PNG_MAGIC)


def test_tree_text_escapes_every_part() -> None:
    from modreg.deps.tree import Node, tree_text

    root = Node("a\u202e", "1.0.0", "sha256:" + "0" * 64, "hybrid")
    root.children = [Node("b\x1b[2J", "1.0.0", "sha256:" + "1" * 64, "equation", "~=1\u2066")]
    lines = tree_text(root)
    assert lines[0].startswith("a\\u202e@1.0.0  hybrid")
    assert lines[1].startswith("└── b\\x1b[2J@1.0.0 (requires ~=1\\u2066)  equation")


def test_show_and_list_escape_format_characters_too(
    hostile: Any, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["show", "physics/gravity"], ["list"]):
        code, out, _ = run_cli([*args, "-r", registry_path], capsys)
        assert code == 0
        _no_raw_unsafe(out)
        assert "\\u200b" in out, args


def test_echo_prints_each_line_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from modreg.cli._render import echo

    echo("ok a\u202eb", "two\nlines")
    echo("x\x1b[31m", err=True)
    out, err = capsys.readouterr()
    assert (out, err) == ("ok a\\u202eb\ntwo\\nlines\n", "x\\x1b[31m\n")
