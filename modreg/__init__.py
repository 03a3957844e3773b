"""modreg: a registry of reusable equation and network modules, and a hybrid-network builder.

Public names are imported lazily (PEP 562) so that ``import modreg`` and ``modreg --help``
stay instant; torch, sympy and pint load only when a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modreg._api import publish, pull
from modreg.errors import (
    CheckFailed,
    ConfigError,
    DependencyError,
    DimensionError,
    DistillError,
    ExportError,
    GraphError,
    InputError,
    IntegrityError,
    InterfaceMismatch,
    InvalidExpression,
    InvalidManifest,
    InvalidModule,
    InvalidName,
    InvalidUnit,
    InvalidVersion,
    InvalidWeights,
    ModregError,
    ModuleNotFound,
    PipelineError,
    SignatureError,
    UsageError,
    VersionExists,
)

if TYPE_CHECKING:
    from modreg._cost import Cost, cost
    from modreg.capturing import Capture, capture, swap
    from modreg.module import Module
    from modreg.registry import Registry
    from modreg.runtime import (
        Block,
        Executable,
        Hybrid,
        HybridNet,
        build,
        export,
        load_export,
        replace,
        rollout,
    )
    from modreg.spec.interface import Interface
    from modreg.spec.manifest import Constant, Manifest, Port
    from modreg.tracking import Tracker

__version__ = "0.1.0"

_LAZY = {
    "Block": "modreg.runtime",
    "Capture": "modreg.capturing",
    "Constant": "modreg.spec.manifest",
    "Cost": "modreg._cost",
    "Executable": "modreg.runtime",
    "Hybrid": "modreg.runtime",
    "HybridNet": "modreg.runtime",
    "Interface": "modreg.spec.interface",
    "Manifest": "modreg.spec.manifest",
    "Module": "modreg.module",
    "Port": "modreg.spec.manifest",
    "Registry": "modreg.registry",
    "Tracker": "modreg.tracking",
    "build": "modreg.runtime",
    "capture": "modreg.capturing",
    "cost": "modreg._cost",
    "export": "modreg.runtime",
    "load_export": "modreg.runtime",
    "replace": "modreg.runtime",
    "rollout": "modreg.runtime",
    "swap": "modreg.capturing",
}

__all__ = [
    "Block",
    "Capture",
    "CheckFailed",
    "ConfigError",
    "Constant",
    "Cost",
    "DependencyError",
    "DimensionError",
    "DistillError",
    "Executable",
    "ExportError",
    "GraphError",
    "Hybrid",
    "HybridNet",
    "InputError",
    "IntegrityError",
    "Interface",
    "InterfaceMismatch",
    "InvalidExpression",
    "InvalidManifest",
    "InvalidModule",
    "InvalidName",
    "InvalidUnit",
    "InvalidVersion",
    "InvalidWeights",
    "Manifest",
    "ModregError",
    "Module",
    "ModuleNotFound",
    "PipelineError",
    "Port",
    "Registry",
    "SignatureError",
    "Tracker",
    "UsageError",
    "VersionExists",
    "__version__",
    "build",
    "capture",
    "cost",
    "export",
    "load_export",
    "publish",
    "pull",
    "replace",
    "rollout",
    "swap",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modreg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
