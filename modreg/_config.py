"""Configuration from the environment, read once and passed explicitly.

``MODREG_HOME`` (default ``~/.modreg``), ``MODREG_REGISTRY`` (default ``$MODREG_HOME/registry``;
a path, ``~`` expanded, or a URI such as ``s3://bucket/prefix``), ``MODREG_OFFLINE`` (``1``:
remote registries are served from the local cache only, no network), ``MODREG_TRUSTED_KEYS``
(public keys whose signatures a pull requires; ``:``-separated paths; set to nothing
usable, such as ``:``, it is refused) and ``MODREG_DEBUG``
(``1`` shows tracebacks in the CLI).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modreg.errors import ConfigError

__all__ = ["Settings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Where modreg keeps its data, and how it reports errors."""

    home: Path
    registry: str
    debug: bool
    offline: bool = False
    trusted_keys: tuple[str, ...] | None = None  # None: no trust policy

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``MODREG_*`` variables; malformed values are refused loudly.

        Raises:
            ConfigError: a variable is set to something modreg cannot use.
        """
        env = os.environ if environ is None else environ
        home_text = env.get("MODREG_HOME", "").strip()
        home = Path(home_text).expanduser() if home_text else Path.home() / ".modreg"
        registry = env.get("MODREG_REGISTRY", "").strip() or str(home / "registry")
        if "://" not in registry:
            registry = str(Path(registry).expanduser())
        return cls(
            home=home,
            registry=registry,
            debug=_flag(env, "MODREG_DEBUG"),
            offline=_flag(env, "MODREG_OFFLINE"),
            trusted_keys=_paths(env, "MODREG_TRUSTED_KEYS"),
        )

    @property
    def cache(self) -> Path:
        """Where pulled modules land when no ``--to`` is given."""
        return self.home / "cache"

    @property
    def store_cache(self) -> Path:
        """The content-addressed cache of every remote registry's objects and records."""
        return self.home / "store-cache"


def _paths(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    """A ``:``-separated list of paths; None when unset. Set, it must name one at least.

    ``"$A:$B"`` with both unset is ``":"``: read as "no paths" it would switch a trust policy
    off without a word, so a value that names nothing is refused instead.
    """
    if name not in env:
        return None
    paths = tuple(p.strip() for p in env[name].split(os.pathsep) if p.strip())
    if not paths:
        raise ConfigError(
            f"{name}={env[name]!r} names no file: list key files (path[:path...]), or unset "
            f"it (unset {name}) to work without a trust policy"
        )
    return paths


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text not in _TRUE | _FALSE:
        raise ConfigError(f"{name}={text!r} is not a boolean: set it to 1 or 0")
    return text in _TRUE
