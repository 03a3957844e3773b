"""CI checks of module versions: interface semver policy, replacement accuracy, reports.

- :func:`compare` / :func:`diff`: what changed between two versions and the bump it needs
  (pure; no torch).
- :func:`check_replacement`: a model with and without a replacement, on reference data and
  over its declared input ranges (torch, via :mod:`modreg.runtime`; imported on first use).
- :func:`replace_in`: a user's torch model before and after ``modreg.swap``, on its batches.
- :func:`check_repository`: CI mode over a folder of module folders.
- :class:`CheckReport`: results as a rich table, JSON or JUnit XML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modreg.check.interface import Bump, Change, InterfaceReport, compare, diff, version_bump
from modreg.check.report import CheckReport, CheckResult

if TYPE_CHECKING:
    from modreg.check.ci import check_repository
    from modreg.check.replace import check_replacement
    from modreg.check.whole import replace_in

__all__ = [
    "Bump",
    "Change",
    "CheckReport",
    "CheckResult",
    "InterfaceReport",
    "check_replacement",
    "check_repository",
    "compare",
    "diff",
    "replace_in",
    "version_bump",
]

_LAZY = {
    "check_replacement": "modreg.check.replace",
    "check_repository": "modreg.check.ci",
    "replace_in": "modreg.check.whole",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modreg.check' has no attribute {name!r}")
