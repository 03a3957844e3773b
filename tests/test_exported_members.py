"""The public API is exactly what ``modreg.__all__`` says, sorted and importable.

``dir(modreg)`` returns ``__all__`` itself, so it proves nothing; the truth is what the
package really holds: the names its ``__init__`` binds (``vars``) plus its lazy table.
"""

from __future__ import annotations

import types

import pytest

import modreg


def _defined_here() -> set[str]:
    """Public names modreg binds itself: its own objects, not submodules or typing helpers."""
    names = set()
    for name, value in vars(modreg).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if getattr(value, "__module__", "").partition(".")[0] == "modreg":
            names.add(name)
    return names


def test_all_is_sorted_and_unique() -> None:
    assert list(modreg.__all__) == sorted(set(modreg.__all__))


def test_every_exported_name_resolves() -> None:
    for name in modreg.__all__:
        assert getattr(modreg, name) is not None, name


def test_all_is_exactly_what_the_package_binds_and_lazily_loads() -> None:
    lazy = set(modreg._LAZY)
    assert _defined_here() - lazy, "vars() found no eager public name: the check is blind"
    assert set(modreg.__all__) == _defined_here() | lazy | {"__version__"}


def test_lazy_table_points_at_the_defining_module() -> None:
    for name, module in modreg._LAZY.items():
        value = getattr(modreg, name)
        owner = getattr(value, "__module__", "")
        assert owner == module or owner.startswith(module + "."), (name, owner)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_member"):
        modreg.no_such_member  # noqa: B018
