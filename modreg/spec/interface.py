"""A module's typed interface: its named input and output ports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from modreg.spec.manifest import Manifest, Port

__all__ = ["Interface"]


@dataclass(frozen=True)
class Interface:
    """Ordered input and output ports, as a module declares them."""

    inputs: Mapping[str, Port]
    outputs: Mapping[str, Port]

    @classmethod
    def of(cls, manifest: Manifest) -> Interface:
        """The interface declared by ``manifest``."""
        return cls(
            MappingProxyType(dict(manifest.inputs)), MappingProxyType(dict(manifest.outputs))
        )

    def describe(self) -> str:
        """One line, e.g. ``(m1: kg, r: m) -> (F: N)``."""

        def ports(mapping: Mapping[str, Port]) -> str:
            return ", ".join(
                f"{name}: {port.unit}{list(port.shape) if port.shape else ''}"
                for name, port in mapping.items()
            )

        return f"({ports(self.inputs)}) -> ({ports(self.outputs)})"
