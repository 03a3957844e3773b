"""The torch side of modreg: executable modules, the hybrid builder, rollouts and export.

Everything here imports torch; ``modreg`` itself re-exports these names lazily.

- :func:`build`: any module (equation, network, hybrid) -> an :class:`Executable` torch module.
- :class:`Block`: a network part with typed ports (``Block.mlp(...)``), savable as a module.
- :class:`Hybrid` / :class:`HybridNet`: compose modules; every joint checked at build time.
- :func:`replace`: swap a part for an interface-compatible module.
- :func:`rollout`: integrate a built model as an ODE right-hand side (Euler, RK4).
- :func:`export` / :func:`load_export`: TorchScript or ``torch.export`` artefacts.
"""

from modreg.runtime._base import Executable
from modreg.runtime._build import build, replace
from modreg.runtime._equation import EquationModule
from modreg.runtime._export import export, load_export
from modreg.runtime._hybrid import Hybrid, HybridNet, PartHandle
from modreg.runtime._network import Block
from modreg.runtime._rollout import rollout
from modreg.runtime._terms import Term

__all__ = [
    "Block",
    "EquationModule",
    "Executable",
    "Hybrid",
    "HybridNet",
    "PartHandle",
    "Term",
    "build",
    "export",
    "load_export",
    "replace",
    "rollout",
]
