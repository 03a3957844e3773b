"""The public API is exactly what ``modreg.__all__`` says, sorted and importable."""

from __future__ import annotations

import modreg


def test_all_is_sorted_and_unique() -> None:
    assert list(modreg.__all__) == sorted(set(modreg.__all__))


def test_every_exported_name_resolves() -> None:
    for name in modreg.__all__:
        assert getattr(modreg, name) is not None, name


def test_public_members_are_exported() -> None:
    public = {name for name in dir(modreg) if not name.startswith("_")} - {"annotations"}
    assert public <= set(modreg.__all__) | {"__version__"}
