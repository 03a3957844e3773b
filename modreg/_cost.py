"""What a module costs to run: parameters, FLOPs per sample, measured latency; per part.

FLOPs are counted on the aten operations a forward actually executes, with a
``TorchDispatchMode``: matmul-like operations use torch's own formulas
(``torch.utils.flop_counter``, 2 FLOPs per multiply-add; a linear layer's bias add is not
counted, as in torch), every other arithmetic operation counts one FLOP per output element
(transcendentals such as ``tanh`` and ``exp`` included, at 1 each), reductions one per input
element (a vector norm two: square and add), and shape-only operations (views, reshape, cat,
expand, copies) nothing. This counts equations and networks by the same rule, so their ratio
is meaningful.

Energy per million predictions (and its CO₂) is measured with codecarbon offline
(:mod:`modreg._energy`): the module runs at ``batch`` for ``energy_s`` seconds under an
``OfflineEmissionsTracker``. It is always an estimate, labelled with its method
(``energy_method``: RAPL counters, or TDP × CPU load where there are none), and absent
(None, not zero) without codecarbon. Measuring takes time (half a second, plus a few seconds
of hardware detection the first time in a process), so by default it happens when
``.energy`` is first read, not in every ``cost`` call; ``energy=True`` measures at once,
``energy=False`` never.

This module imports torch only when a function runs, so ``import modreg`` stays light.

Example:
    >>> c = modreg.cost(modreg.build(modreg.pull("physics/drag")), batch=4096)  # doctest: +SKIP
    >>> print(c)  # doctest: +SKIP
    1 parameter, 13 FLOP/sample, 21.4 µs per call at batch 4096
    >>> c.energy, c.energy_method  # doctest: +SKIP
    (0.41, 'estimate: codecarbon 3.3.2 offline, CPU power estimated as TDP × ...')
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modreg._energy import EnergyEstimate
    from modreg.module import Module
    from modreg.registry import Registry
    from modreg.spec.manifest import Manifest

__all__ = ["Cost", "cost", "count_flops", "estimate"]

_FREE = frozenset(
    {"view", "_unsafe_view", "reshape", "expand", "unsqueeze", "squeeze", "cat", "stack", "split",
     "split_with_sizes", "slice", "select", "clone", "copy_", "detach", "_to_copy", "t",
     "transpose", "permute", "contiguous", "empty", "empty_like", "full", "full_like", "zeros",
     "zeros_like", "ones", "ones_like", "alias", "lift_fresh", "lift_fresh_copy", "scalar_tensor",
     "_local_scalar_dense", "is_nonzero", "isfinite", "all", "any", "eq", "ne", "new_empty"}
)  # fmt: skip
_REDUCTIONS = {"sum": 1, "mean": 1, "prod": 1, "amax": 1, "amin": 1, "linalg_vector_norm": 2}


@dataclass(frozen=True)
class Cost:
    """Run cost of a module; ``parts`` holds the same for each part of a hybrid."""

    parameters: int
    trainable_parameters: int
    flops_per_sample: float
    latency_s: float | None = None
    batch: int = 1
    parts: dict[str, Cost] = field(default_factory=dict)
    # How to measure energy when first asked (None: not offered); the result, once measured.
    probe: Callable[[], EnergyEstimate | None] | None = field(
        default=None, repr=False, compare=False
    )
    _measured: dict[str, EnergyEstimate | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def throughput(self) -> float | None:
        """Samples per second at ``batch`` (None when latency was not measured)."""
        return None if not self.latency_s else self.batch / self.latency_s

    @property
    def energy_estimate(self) -> EnergyEstimate | None:
        """The codecarbon measurement (measured on first use; None without codecarbon)."""
        if "energy" not in self._measured:
            self._measured["energy"] = self.probe() if self.probe is not None else None
        return self._measured["energy"]

    @property
    def energy(self) -> float | None:
        """Estimated joules per million predictions (None when not measurable)."""
        found = self.energy_estimate
        return None if found is None else found.joules / (found.calls * self.batch) * 1e6

    @property
    def co2(self) -> float | None:
        """Estimated grams of CO₂eq per million predictions (None when not measurable)."""
        found = self.energy_estimate
        return None if found is None else found.co2_g / (found.calls * self.batch) * 1e6

    @property
    def energy_method(self) -> str | None:
        """How energy and CO₂ were estimated (codecarbon's method, the grid's intensity)."""
        found = self.energy_estimate
        return None if found is None else found.method

    def __str__(self) -> str:
        plural = "" if self.parameters == 1 else "s"
        text = f"{self.parameters:,} parameter{plural}, {_si(self.flops_per_sample)}FLOP/sample"
        if self.latency_s is not None:
            text += f", {_si(self.latency_s)}s per call at batch {self.batch:,}"
        if self._measured.get("energy") is not None:
            text += f", ~{_si(self.energy or 0.0)}J and ~{_si(self.co2 or 0.0)}g CO2eq per 1M "
            text += "predictions (estimate)"
        return text

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "parameters": self.parameters,
            "trainable_parameters": self.trainable_parameters,
            "flops_per_sample": self.flops_per_sample,
            "latency_s": self.latency_s,
            "batch": self.batch,
        }
        if self._measured.get("energy") is not None:
            data["energy_j_per_million"] = self.energy
            data["co2_g_per_million"] = self.co2
            data["energy_method"] = self.energy_method
        if self.parts:
            data["parts"] = {name: part.to_json() for name, part in self.parts.items()}
        return data


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value / 1e-9:.3g} n" if value else "0 "


def _op_flops(func: Any, args: Any, kwargs: Any, out: Any, registry: Any) -> int:
    import torch

    packet = func._overloadpacket
    if packet in registry:
        return int(registry[packet](*args, **kwargs, out_val=out))
    name = packet.__name__
    if name in _FREE:
        return 0
    if name in _REDUCTIONS:
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        return _REDUCTIONS[name] * (first.numel() if first is not None else 0)
    outputs = out if isinstance(out, tuple | list) else (out,)
    return sum(t.numel() for t in outputs if isinstance(t, torch.Tensor) and t.is_floating_point())


def count_flops(model: Any, inputs: Any) -> int:
    """FLOPs of one call ``model(inputs)``, counted over the aten ops it runs (see above)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class _Counter(TorchDispatchMode):  # type: ignore[no-untyped-call]
        total = 0

        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            _Counter.total += _op_flops(func, args, kwargs, out, flop_registry)
            return out

    with torch.no_grad(), _Counter():  # type: ignore[no-untyped-call]
        model(inputs)
    return _Counter.total


def _latency(model: Any, inputs: Any, *, budget_s: float = 0.3, max_runs: int = 50) -> float:
    """Median wall time of one call (after warm-up), within about ``budget_s`` seconds."""
    import torch

    times: list[float] = []
    with torch.no_grad():
        for _ in range(2):
            model(inputs)
        start = time.perf_counter()
        while len(times) < max_runs and (len(times) < 3 or time.perf_counter() - start < budget_s):
            t0 = time.perf_counter()
            model(inputs)
            times.append(time.perf_counter() - t0)
    import statistics  # only latency needs it; keeps `import modreg` light

    return statistics.median(times)


@dataclass(frozen=True)
class EnergyOptions:
    """Where and how long energy is measured (see :func:`cost`)."""

    seconds: float = 0.5
    country: str = "USA"
    grid_g_per_kwh: float | None = None


def _energy_probe(
    model: Any, inputs: Any, options: EnergyOptions
) -> Callable[[], EnergyEstimate | None]:
    def probe() -> EnergyEstimate | None:
        import torch

        from modreg._energy import measure

        def work() -> None:
            with torch.no_grad():
                model(inputs)

        return measure(
            work,
            seconds=options.seconds,
            country=options.country,
            grid_g_per_kwh=options.grid_g_per_kwh,
        )

    return probe


def _measure(model: Any, batch: int, latency: bool, energy: EnergyOptions | None = None) -> Cost:
    from modreg.runtime._export import example_inputs

    inputs = example_inputs(model.interface.inputs, batch)
    parameters = list(model.parameters())
    parts = getattr(model, "parts", None)
    return Cost(
        parameters=sum(p.numel() for p in parameters),
        trainable_parameters=sum(p.numel() for p in parameters if p.requires_grad),
        flops_per_sample=count_flops(model, inputs) / batch,
        latency_s=_latency(model, inputs) if latency else None,
        batch=batch,
        parts={n: _measure(p, batch, latency) for n, p in parts.items()}
        if parts is not None
        else {},
        probe=_energy_probe(model, inputs, energy) if energy is not None else None,
    )


def cost(
    target: Module | Any,
    *,
    batch: int = 1024,
    latency: bool = True,
    energy: bool | None = None,
    energy_s: float = 0.5,
    country: str = "USA",
    grid_g_per_kwh: float | None = None,
    registry: Registry | None = None,
) -> Cost:
    """Parameters, FLOPs per sample, latency and energy of a module or a built network.

    Args:
        target: a :class:`~modreg.Module` (built first) or a built module (``modreg.build``,
            ``Hybrid.build``, a ``Block``).
        batch: the batch size latency and energy are measured at (FLOPs are divided by it).
        latency: measure wall-clock latency (CPU or wherever the module's tensors live).
        energy: ``True`` measures energy and CO₂ per million predictions now, ``None``
            (default) when ``.energy`` is first read, ``False`` never (the whole model only;
            parts have none).
        energy_s: how long the module runs under the energy tracker.
        country: the grid whose carbon intensity turns energy into CO₂ (3-letter ISO code,
            codecarbon's offline tables) ...
        grid_g_per_kwh: ... or the intensity itself, in g CO₂eq per kWh.
        registry: where a hybrid Module's parts come from.

    Raises:
        InputError: a batch below 1, a non-positive ``energy_s``, a country codecarbon does
            not know or a negative intensity (the last two when energy is measured).
    """
    from modreg.errors import InputError
    from modreg.module import Module

    if batch < 1 or not math.isfinite(batch):
        raise InputError(f"batch={batch} must be a positive integer")
    if not energy_s > 0:
        raise InputError(f"energy_s={energy_s} must be a positive number of seconds")
    if isinstance(target, Module):
        from modreg.runtime import build

        target = build(target, registry=registry)
    options = None if energy is False else EnergyOptions(energy_s, country, grid_g_per_kwh)
    result = _measure(target, batch, latency, options)
    if energy:
        _ = result.energy_estimate
    return result


def estimate(manifest: Manifest) -> Cost | None:
    """Parameters and FLOPs per sample from a manifest alone (no weights; None for hybrids)."""
    if manifest.kind == "equation":
        from modreg.runtime._equation import build_equation

        return _measure(build_equation(manifest), 64, latency=False)
    if manifest.kind == "network":
        from modreg.runtime._network import block_from_manifest

        return _measure(block_from_manifest(manifest), 64, latency=False)
    return None
