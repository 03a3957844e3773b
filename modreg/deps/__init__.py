"""What modules are built on: the dependency tree, locks, lineage and dependents' checks.

``tree`` walks a hybrid's locked parts (everything here stands on it); ``lock`` writes and
upgrades a hybrid's ``modreg.lock``; ``lineage`` follows provenance upstream and users
downstream; ``dependents`` rebuilds every published hybrid on a new version and re-runs its
checks. They import in that order, never back.
"""

from __future__ import annotations

from modreg.deps.dependents import check_dependents, find_dependents
from modreg.deps.lineage import lineage
from modreg.deps.lock import upgrade_lock, write_lock
from modreg.deps.tree import dependency_tree

__all__ = [
    "check_dependents",
    "dependency_tree",
    "find_dependents",
    "lineage",
    "upgrade_lock",
    "write_lock",
]
