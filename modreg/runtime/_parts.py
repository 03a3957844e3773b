"""The part record of a hybrid: what fills a slot (a module or a built block) and whether it trains.

A leaf: the editable :class:`~modreg.runtime._hybrid.Hybrid`, the replacement rule
(``_replace``) and the module writer (``_hybrid_io``) all read it, and it reads none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modreg.runtime._terms import Term
from modreg.spec.interface import Interface

__all__ = ["Part", "WireLike"]

# What may feed an input port: a term, a name or ``part.port`` text, a number, a vector.
WireLike = Term | str | float | int | Sequence[float]


@dataclass(frozen=True)
class Part:
    """One part of a hybrid: ``source`` is a pulled Module or a built Executable."""

    source: Any
    trainable: bool

    @property
    def interface(self) -> Interface:
        interface: Interface = self.source.interface
        return interface

    @property
    def label(self) -> str:
        return str(getattr(self.source, "ref", None) or getattr(self.source, "label", "block"))
