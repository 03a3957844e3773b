"""Module names, versions and version specs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from modreg.errors import InvalidName, InvalidVersion
from modreg.spec.names import ModuleRef, parse_name, parse_spec, parse_version

SEGMENT = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)


@pytest.mark.parametrize("name", ["gravity", "physics/gravity", "a", "x-1.2_b/c.d", "0/0"])
def test_good_names(name: str) -> None:
    assert parse_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "../evil", "/abs", "Physics/gravity", "a/b/c", "a/", "-x", "a//b", "a..b", "na me",
     "x\n", "ns/", ".hidden", "a" * 129],
)  # fmt: skip
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidName):
        parse_name(name)


@given(st.one_of(SEGMENT, st.builds(lambda a, b: f"{a}/{b}", SEGMENT, SEGMENT)))
def test_generated_valid_names_parse(name: str) -> None:
    assert parse_name(name) == name


@given(st.text(max_size=40))
def test_names_never_escape(text: str) -> None:
    """Whatever the text, a name that parses is relative and cannot walk up."""
    try:
        name = parse_name(text)
    except InvalidName:
        return
    assert not name.startswith("/") and ".." not in name and name == name.lower()


@pytest.mark.parametrize("text", ["1.0.0", "0.1.0", "10.20.30", "1.0.0rc1", "2.0.0.post1"])
def test_good_versions(text: str) -> None:
    assert str(parse_version(text)) == text


@pytest.mark.parametrize(
    "text",
    ["1.0.0\n", " 1.0.0", "1.0.0; rm -rf /", "1.0.0+local", "latest", "1.0", "1", "v1.0.0", "",
     "1.0.0.0", "01.0.0x"],
)  # fmt: skip
def test_bad_versions(text: str) -> None:
    with pytest.raises(InvalidVersion):
        parse_version(text)


@given(st.lists(st.tuples(*[st.integers(0, 50)] * 3), min_size=2, max_size=10))
def test_version_order_is_numeric(triples: list[tuple[int, int, int]]) -> None:
    """Versions order as tuples of integers (1.10.0 > 1.9.0), never as strings."""
    versions = [parse_version(".".join(map(str, t))) for t in triples]
    assert sorted(versions) == [Version(".".join(map(str, t))) for t in sorted(triples)]


def test_specs() -> None:
    assert parse_spec("latest").is_latest
    assert parse_spec("").is_latest
    assert parse_spec("1.2.3").pin == Version("1.2.3")
    assert parse_spec("==1.2.3").pin == Version("1.2.3")
    spec = parse_spec(">=1.2,<2")
    assert spec.admits(Version("1.5.0"), yanked=False)
    assert not spec.admits(Version("2.0.0"), yanked=False)
    assert not spec.admits(Version("1.5.0"), yanked=True)
    assert parse_spec("1.5.0").admits(Version("1.5.0"), yanked=True)
    assert parse_spec("~=1.2").admits(Version("1.9.0"), yanked=False)
    assert not parse_spec("latest").admits(Version("2.0.0rc1"), yanked=False)


@pytest.mark.parametrize("text", [">=1.0 <2", "=>1", "1.0.0+x", "~=", ">=1.0.0+x", "1.0.0 "])
def test_bad_specs(text: str) -> None:
    with pytest.raises(InvalidVersion):
        parse_spec(text)


def test_module_ref() -> None:
    ref = ModuleRef.parse("physics/gravity@>=1,<2")
    assert (ref.name, str(ref.spec)) == ("physics/gravity", ">=1,<2")
    assert str(ModuleRef.parse("physics/gravity")) == "physics/gravity"
    with pytest.raises(InvalidVersion):
        ModuleRef.parse("physics/gravity@")
    with pytest.raises(InvalidName):
        ModuleRef.parse("../x@1.0.0")
