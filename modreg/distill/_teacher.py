"""Network mode: pull the teacher, draw inputs over its declared ranges, and query it.

The teacher must be a network module: a hybrid mixes equations and networks, and distilling
it whole would throw away the equations it already has, so the user is sent to its network
part instead. Inputs are drawn uniformly (per component for vectors) from each input port's
``range``, seeded, so the same command distils the same samples.

What distillation asks of a teacher is the small :class:`Teacher` protocol: a label, an
interface, its recorded error (``metrics``) and ``query``. A pulled network module satisfies
it through :class:`NetworkTeacher`; a captured part of a user's own torch model
(:class:`modreg.capturing.Capture`) satisfies :class:`CapturedPart`, which adds its rows and
whether it can be queried at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from modreg.errors import DistillError
from modreg.spec.manifest import Port

if TYPE_CHECKING:
    from modreg.module import Module
    from modreg.registry import Registry
    from modreg.spec.interface import Interface

__all__ = [
    "CapturedPart",
    "NetworkTeacher",
    "Teacher",
    "evaluate",
    "load_teacher",
    "sample_inputs",
]

Arrays = dict[str, np.ndarray[Any, Any]]
BATCH = 1 << 15


class Teacher(Protocol):
    """A network distillation queries: ports in, ports out, right to its recorded error."""

    @property
    def label(self) -> str: ...

    @property
    def interface(self) -> Interface: ...

    @property
    def metrics(self) -> Mapping[str, float]:
        """Its own error as a network module records it (``rmse_<port>``); may be empty."""
        ...

    def query(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> Arrays:
        """Outputs (float64) at ``inputs`` (``{port: (rows, *shape)}``)."""
        ...


@runtime_checkable
class CapturedPart(Teacher, Protocol):
    """A part of a user's model captured in process (:class:`modreg.capturing.Capture`)."""

    @property
    def queryable(self) -> bool:
        """False: ``query`` cannot run, distil the rows (data mode)."""
        ...

    @property
    def provenance(self) -> dict[str, str | int | float | bool | None]: ...

    def table(self) -> Arrays:
        """The captured rows, inputs and outputs, ``(rows, *shape)`` per port."""
        ...


@dataclass(frozen=True)
class NetworkTeacher:
    """A pulled network module and its built torch module, as a :class:`Teacher`."""

    module: Module
    model: Any

    @property
    def label(self) -> str:
        return self.module.ref

    @property
    def interface(self) -> Interface:
        return self.module.interface

    @property
    def metrics(self) -> Mapping[str, float]:
        return self.module.manifest.metrics

    def query(self, inputs: Mapping[str, np.ndarray[Any, Any]]) -> Arrays:
        return evaluate(self.model, self.module.manifest.inputs, inputs)


def load_teacher(ref: str, registry: Registry) -> Module:
    """Pull ``ref`` from ``registry`` and check that it is a network module.

    Raises:
        ModuleNotFound: nothing in the registry matches ``ref``.
        DistillError: the module is an equation or a hybrid.
    """
    module = registry.pull(ref)
    kind = module.manifest.kind
    if kind == "hybrid":
        raise DistillError(
            f"{module.ref} is a hybrid module, not a network: distill one of its network "
            f"parts ({', '.join(sorted(module.manifest.requires or {}))})"
        )
    if kind != "network":
        raise DistillError(
            f"{module.ref} is already an equation module: distill a network module, "
            "or give --data to fit an equation to a table"
        )
    return module


def check_ranges(ports: Mapping[str, Port], ref: str) -> None:
    """Refuse inputs that cannot be sampled, naming the first such port and both fixes."""
    for name, port in ports.items():
        if port.range is None:
            raise DistillError(
                f"input {name!r} of {ref} declares no range to sample: add range: to the port "
                "or pass --data with inputs to evaluate the teacher on"
            )


def sample_inputs(ports: Mapping[str, Port], count: int, *, seed: int) -> Arrays:
    """``count`` uniform, seeded draws over each port's range (every port must have one)."""
    rng = np.random.default_rng(seed)
    samples: Arrays = {}
    for name, port in ports.items():
        assert port.range is not None  # check_ranges ran first
        low, high = port.range
        samples[name] = rng.uniform(low, high, size=(count, *port.shape))
    return samples


def evaluate(model: Any, ports: Mapping[str, Port], inputs: Mapping[str, Any]) -> Arrays:
    """Run a built module on numpy inputs in batches; outputs as float64 arrays.

    Each input is cast to its port's dtype (a float32 network sees float32 tensors).
    """
    import torch

    from modreg.runtime._equation import torch_dtype

    count = len(next(iter(inputs.values())))
    chunks: dict[str, list[np.ndarray[Any, Any]]] = {}
    with torch.no_grad():
        for start in range(0, count, BATCH):
            batch = {
                name: torch.as_tensor(
                    np.asarray(inputs[name][start : start + BATCH]),
                    dtype=torch_dtype(port.dtype),
                )
                for name, port in ports.items()
            }
            for name, value in model(batch).items():
                chunks.setdefault(name, []).append(value.detach().double().numpy())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}
