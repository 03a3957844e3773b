"""The two verbs most users need, on the default registry: :func:`publish` and :func:`pull`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modreg.module import Module
    from modreg.registry import PublishResult, Registry

__all__ = ["publish", "pull"]


def _registry(registry: str | Path | Registry | None) -> Registry:
    from modreg.registry import Registry

    return registry if isinstance(registry, Registry) else Registry(registry)


def publish(
    directory: str | Path, *, registry: str | Path | Registry | None = None
) -> PublishResult:
    """Publish the module in ``directory`` (default registry: ``$MODREG_REGISTRY``).

    Example:
        >>> modreg.publish("modules/gravity").ref  # doctest: +SKIP
        'physics/gravity@1.0.0'
    """
    return _registry(registry).publish(directory)


def pull(
    ref: str, *, to: str | Path | None = None, registry: str | Path | Registry | None = None
) -> Module:
    """Pull a verified module by ``name@spec`` into ``to`` or the local cache.

    Example:
        >>> gravity = modreg.pull("physics/gravity@>=1,<2")  # doctest: +SKIP
        >>> gravity.interface.describe()  # doctest: +SKIP
        '(m1: kg, m2: kg, r: m) -> (F: N)'
    """
    return _registry(registry).pull(ref, to=to)  # MODREG_TRUSTED_KEYS applies in every pull
