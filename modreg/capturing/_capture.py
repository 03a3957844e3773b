"""``modreg.capture``: record a submodule of any torch model as rows of named, typed ports.

Forward hooks on the named submodule see every call while the model runs over the user's
batches (eval mode, no gradients; the model's modes restored and the hook removed after,
even on error). The user's ``inputs`` mapping turns each call's arguments into port tensors,
``outputs`` (or the default: the output tensor is the one output port) its output; rows are
kept by a seeded reservoir, input ranges are what was seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from modreg.capturing._batches import call_with, eval_mode, run_batch
from modreg.capturing._lookup import find_part
from modreg.capturing._mapping import (
    InputsMap,
    Layout,
    OutputsMap,
    check_rows,
    declare_ports,
    default_outputs,
    mapped,
    port_dtype,
)
from modreg.capturing._reservoir import Reservoir
from modreg.capturing._table import write_table, write_units
from modreg.errors import InputError, InterfaceMismatch, ModregError
from modreg.runtime._equation import torch_dtype
from modreg.runtime._ports import PortLike
from modreg.spec.interface import Interface
from modreg.spec.manifest import Port

__all__ = ["Capture", "capture"]

Array = np.ndarray[Any, Any]
CallMap = Callable[..., Any]
QUERY_BATCH = 1 << 15
FLUSH_ROWS = 1 << 16  # rows a capture holds before it checks and samples them


class Capture:
    """What :func:`capture` recorded: the rows, the interface, and the live part to query.

    ``table()`` gives the rows (numpy, ``(rows, *shape)`` per port), ``save()`` writes them
    as reference data, ``interface`` holds the ports with the input ranges seen, and
    ``query()`` runs the live submodule on fresh port values, which needs ``call=`` (the
    inverse of ``inputs``): without it a capture is data only, and distillation fits its
    rows (data mode) instead of querying it.
    """

    def __init__(
        self,
        model: nn.Module,
        name: str,
        part: nn.Module,
        interface: Interface,
        rows: dict[str, Array],
        stats: tuple[int, int, int],
        mappings: tuple[InputsMap, OutputsMap | None, CallMap | None],
        layout: Layout | None,
        metrics: Mapping[str, float],
    ) -> None:
        self.name = name
        self.part = part
        self.interface = interface
        self.calls, self.rows_seen, self.seed = stats
        self.inputs, self.outputs, self.call = mappings
        self.layout = layout
        self.metrics: Mapping[str, float] = dict(metrics)
        self._rows = rows
        self._model = type(model).__name__

    @property
    def label(self) -> str:
        """``MyGNN.edge_model``: the model's class and the part's dotted name."""
        return f"{self._model}.{self.name}"

    @property
    def queryable(self) -> bool:
        """Whether :meth:`query` can run (a ``call=`` inverse was given)."""
        return self.call is not None

    @property
    def provenance(self) -> dict[str, str | int | float | bool | None]:
        return {
            "captured_part": self.label,
            "captured_calls": self.calls,
            "captured_rows": self.rows_seen,
            "capture_seed": self.seed,
            "capture_mode": "queried" if self.queryable else "data",
        }

    def table(self) -> dict[str, Array]:
        """The kept rows, float64, ``(rows, *shape)`` per port (inputs first)."""
        return {n: a.copy() for n, a in self._rows.items()}

    def save(self, path: str | Path, *, units: str | Path | None = None) -> Path:
        """Write the rows as CSV (``v[0]`` columns) or Parquet (``.parquet``, needs pyarrow).

        The file reads back through ``modreg check replace --data`` and ``modreg distill
        --data``; ``units`` also writes the units YAML distill's ``--units`` takes.

        Raises:
            ConfigError: another suffix, or Parquet without pyarrow.
        """
        ports = dict(self.interface.inputs) | dict(self.interface.outputs)
        written = write_table(Path(path), self._rows, ports)
        if units is not None:
            write_units(Path(units), ports)
        return written

    def query(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        """The live submodule on fresh inputs ``{port: (rows, *shape)}``: ``{port: array}``.

        Runs in process, in eval mode without gradients, through ``call=`` (port tensors in,
        the submodule's arguments out) and the output mapping.

        Raises:
            InputError: the capture has no ``call=`` inverse, or an input port is missing.
        """
        if self.call is None:
            raise InputError(
                f"capture of {self.label} cannot be queried: its inputs mapping is one-way; "
                "pass call= to modreg.capture (port tensors in, the submodule's arguments out), "
                "or use its rows (table(), save(); distillation then runs in data mode)"
            )
        missing = [n for n in self.interface.inputs if n not in inputs]
        if missing:
            raise InputError(f"query of {self.label} needs input ports {missing}")
        count = len(next(iter(inputs.values())))
        chunks: dict[str, list[Array]] = {}
        with torch.no_grad(), eval_mode(self.part):
            for start in range(0, count, QUERY_BATCH):
                part = {n: np.asarray(v)[start : start + QUERY_BATCH] for n, v in inputs.items()}
                for name, values in self._query(part).items():
                    chunks.setdefault(name, []).append(values)
        return {n: np.concatenate(c) for n, c in chunks.items()}

    def _query(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        assert self.call is not None
        device = next((t.device for t in (*self.part.parameters(), *self.part.buffers())), None)
        ports = {
            n: torch.as_tensor(inputs[n], dtype=torch_dtype(p.dtype), device=device)
            for n, p in self.interface.inputs.items()
        }
        arguments = _called(self.call, ports, self.label)
        output = call_with(self.part, arguments)
        rows = len(next(iter(ports.values())))
        values = _outputs(self.outputs, output, self.interface.outputs, rows)
        return {n: t.detach().double().cpu().numpy() for n, t in values.items()}

    def __repr__(self) -> str:
        return (
            f"Capture({self.label!r}, {self.interface.describe()}, rows={len(self)}, "
            f"calls={self.calls}, queryable={self.queryable})"
        )

    def __len__(self) -> int:
        return len(next(iter(self._rows.values())))


def _called(call: CallMap, ports: Mapping[str, Tensor], label: str) -> Any:
    try:
        return call(**ports)
    except ModregError:
        raise
    except Exception as exc:
        raise InterfaceMismatch(
            f"call= of the capture of {label} failed: {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}; it takes the input ports as keyword "
            "arguments and returns the submodule's arguments (a tuple, a dict or a tensor)"
        ) from exc


def _outputs(
    outputs: OutputsMap | None, output: Any, ports: Mapping[str, Port], rows: int
) -> dict[str, Tensor]:
    if outputs is None:
        name, port = next(iter(ports.items()))
        return {name: default_outputs(output, name, port, rows)[0]}
    values = mapped("outputs", outputs, (output,), {})
    missing = [n for n in ports if n not in values]
    if missing:
        raise InterfaceMismatch(f"the outputs mapping gives no value for output ports {missing}")
    if check_rows(values, ports, "outputs") != rows:
        raise InterfaceMismatch(
            f"the outputs mapping gives {len(next(iter(values.values())))} rows for {rows} "
            "rows of inputs: give one output row per input row"
        )
    return {n: values[n] for n in ports}


class _Recorder:
    """The hook's state: the ports, their rows, ranges and the first call's output layout."""

    def __init__(
        self,
        ports: dict[str, Port],
        typed: set[str],
        mappings: tuple[InputsMap, OutputsMap | None],
        max_rows: int,
        seed: int,
    ) -> None:
        self.ports, self.typed = ports, typed
        self.inputs, self.outputs = mappings
        self.reservoir = Reservoir(max_rows, seed)
        self.calls = 0
        self.low: dict[str, float] = {}
        self.high: dict[str, float] = {}
        self.layout: Layout | None = None
        self.input_names: list[str] = []
        self._pending: dict[str, list[Tensor]] = {}
        self._pending_calls: list[tuple[int, int]] = []
        self._pending_rows = 0

    def __call__(self, _module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        values = mapped("inputs", self.inputs, tuple(args), dict(kwargs))
        rows = check_rows(values, self.ports, "inputs")
        if not self.input_names:
            self.input_names = [n for n in self.ports if n in values]
        if set(values) != set(self.input_names):
            raise InterfaceMismatch(
                f"the inputs mapping gave ports {sorted(values)} on call {self.calls + 1}, "
                f"{sorted(self.input_names)} before: give the same ports on every call"
            )
        values |= self._outputs(output, rows)
        self._record(values)

    def _outputs(self, output: Any, rows: int) -> dict[str, Tensor]:
        out_ports = {n: p for n, p in self.ports.items() if n not in self.input_names}
        if not out_ports:
            raise InterfaceMismatch(
                f"every declared port {list(self.ports)} is an input: declare the output "
                "port too (ports={..., 'F': 'N'})"
            )
        if self.outputs is None:
            if len(out_ports) != 1:
                raise InterfaceMismatch(
                    f"ports {list(out_ports)} are not inputs: without outputs= the submodule's "
                    "output is one port; pass outputs= mapping it to {port: tensor}"
                )
            name, port = next(iter(out_ports.items()))
            value, layout = default_outputs(output, name, port, rows)
            self.layout = self.layout or layout
            return {name: value}
        return _outputs(self.outputs, output, out_ports, rows)

    def _record(self, values: Mapping[str, Tensor]) -> None:
        """Keep one call's rows: copied as float64 now, checked and sampled in blocks.

        The checks (NaN, ranges) and the reservoir run once per :data:`FLUSH_ROWS` rows, not
        once per call: a part called thousands of times per pass pays for each only once.
        """
        self.calls += 1
        rows = 0
        for name, tensor in values.items():
            if name not in self.typed:  # the first call's dtype, unless ports= gave one
                self.ports[name] = self.ports[name].model_copy(update={"dtype": port_dtype(tensor)})
                self.typed.add(name)
            copied = tensor.detach().to(device="cpu", dtype=torch.float64, copy=True)
            self._pending.setdefault(name, []).append(copied)
            rows = len(copied)
        self._pending_calls.append((self.calls, rows))
        self._pending_rows += rows
        if self._pending_rows >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Check and sample the rows kept since the last flush."""
        if not self._pending_calls:
            return
        chunk: dict[str, Array] = {}
        for name in self._names():
            block = torch.cat(self._pending[name])
            if not bool(torch.isfinite(block).all()):
                raise InputError(
                    f"port {name!r} holds NaN or Inf on call {self._first_bad(name)} of the "
                    "captured part: capture finite values only (clean the batches, or mask "
                    "those rows in the mapping)"
                )
            if name in self.input_names and block.numel():
                self.low[name] = min(self.low.get(name, math.inf), float(block.min()))
                self.high[name] = max(self.high.get(name, -math.inf), float(block.max()))
            chunk[name] = block.numpy()
        self._pending, self._pending_calls, self._pending_rows = {}, [], 0
        self.reservoir.add(chunk)

    def _first_bad(self, name: str) -> int:
        for (call, _), tensor in zip(self._pending_calls, self._pending[name], strict=True):
            if not bool(torch.isfinite(tensor).all()):
                return call
        return self._pending_calls[0][0]

    def _names(self) -> list[str]:
        return [*self.input_names, *(n for n in self.ports if n not in self.input_names)]

    def interface(self) -> Interface:
        inputs = {n: self._ranged(n) for n in self.input_names}
        outputs = {n: p for n, p in self.ports.items() if n not in self.input_names}
        return Interface(inputs, outputs)

    def _ranged(self, name: str) -> Port:
        port = self.ports[name]
        low, high = self.low.get(name, 0.0), self.high.get(name, 0.0)
        if port.range is not None or not low < high:  # declared, or nothing to span
            return port
        return port.model_copy(update={"range": (low, high)})


def capture(
    model: nn.Module,
    name: str,
    batches: Iterable[Any],
    *,
    inputs: InputsMap,
    ports: Mapping[str, PortLike],
    outputs: OutputsMap | None = None,
    call: CallMap | None = None,
    max_rows: int = 100_000,
    seed: int = 0,
    metrics: Mapping[str, float] | None = None,
) -> Capture:
    """Record every call of submodule ``name`` while ``model`` runs over ``batches``.

    Args:
        model: any ``torch.nn.Module``; it is run in eval mode under ``torch.no_grad()`` and
            left as it was (modes restored, hook removed, even on error).
        name: the submodule's dotted name, as ``model.named_modules()`` gives it
            (``"edge_model"``, ``"encoder.layers.2.mlp"``, ``"0"`` in a Sequential).
        batches: what the model is called on: each a tuple of positional arguments, a
            dict of keyword arguments, or a single tensor.
        inputs: the submodule's arguments to input ports: called like the submodule's
            ``forward`` (same positional and keyword arguments), returning ``{port:
            tensor of shape (rows, *port.shape)}``.
        ports: unit (and shape, dtype) per port: ``"kg"`` for a scalar port, or
            ``{"unit": "m", "shape": [2]}``; the ports ``inputs`` does not give are outputs.
            A port without a dtype takes the captured tensor's.
        outputs: the submodule's output to output ports (``{port: tensor}``); default: the
            output tensor is the only output port, reshaped to ``(rows, *shape)``.
        call: the inverse of ``inputs``, for :meth:`Capture.query`: takes the input ports as
            keyword tensors, returns the submodule's arguments (a tuple, a dict or one
            tensor). Without it the capture is data only: distillation fits its rows.
        max_rows: rows kept (a seeded uniform reservoir over every call's rows).
        seed: seeds the reservoir.
        metrics: the part's own error, as a network module records it (``rmse_F``): the noise
            level distillation settles to; default 1 % of each output's RMS.

    Returns:
        A :class:`Capture`; its input ports' ranges are the min/max seen.

    Raises:
        GraphError: no submodule ``name`` (the nearest names given).
        InterfaceMismatch: a mapping fails, or its tensors disagree with the declared shapes.
        InputError: the part was never called, or a captured value is NaN or Inf.
        InvalidManifest, InvalidUnit: a port does not validate.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        >>> cap = capture(net, "2", [torch.randn(64, 2)], inputs=lambda h: {"h": h},
        ...               ports={"h": {"unit": "V", "shape": [8]}, "y": "m"})
        >>> len(cap), cap.interface.describe()
        (64, '(h: V[8]) -> (y: m)')
    """
    if max_rows < 1:
        raise InputError(f"max_rows={max_rows}: keep at least one row")
    part = find_part(model, name)
    declared, typed = declare_ports(ports)
    recorder = _Recorder(declared, typed, (inputs, outputs), max_rows, seed)
    handle = part.register_forward_hook(recorder, with_kwargs=True)
    try:
        with torch.no_grad(), eval_mode(model):
            for index, batch in enumerate(batches):
                run_batch(model, batch, index, type(model).__name__)
    finally:
        handle.remove()
    recorder.flush()
    if recorder.calls == 0:
        raise InputError(
            f"submodule {name!r} of {type(model).__name__} was never called while the model ran "
            "over the batches: give batches whose forward reaches it (or capture another part)"
        )
    return Capture(
        model,
        name,
        part,
        recorder.interface(),
        recorder.reservoir.arrays(),
        (recorder.calls, recorder.reservoir.seen, seed),
        (inputs, outputs, call),
        recorder.layout,
        metrics or {},
    )
