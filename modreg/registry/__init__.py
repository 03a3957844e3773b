"""Modules over a store: publish, resolve, pull, copy, list, yank, verify, repair and gc.

The layers inside, each importing only those before it:

- ``_keys`` (the key layout), ``_records`` (version records, the manifest identity check),
  ``_deliver`` (every byte hashed as it is delivered), ``_index`` (the create-only index),
  ``_yanks`` (a version's yank state as a chain of create-only markers);
- ``_protocol``: the one write protocol (in-flight markers, the gc lock, object puts and
  repair, the record commit and what follows it) that publish, copy, repair and gc share;
- ``_folders`` (staging copies, verified installs), ``_remote_cache`` (the cache in front of
  a remote store, keyed by the registry's identity);
- ``_registry``: :class:`Registry`; ``_maintenance``: ``verify``, ``repair`` and ``gc``.
"""

from __future__ import annotations

from modreg.registry._records import VersionRecord, check_identity
from modreg.registry._registry import ListEntry, PublishResult, Registry
from modreg.registry._yanks import YankState

__all__ = [
    "ListEntry",
    "PublishResult",
    "Registry",
    "VersionRecord",
    "YankState",
    "check_identity",
]
