"""Port mappings: a submodule's arguments and output as named port tensors, checked.

A user's ``inputs`` mapping takes the submodule's own arguments and returns ``{port:
tensor}``; ``outputs`` (optional) takes its output. Each tensor must be ``(rows, *shape)``
for its declared port, with one row count across the call. Without ``outputs``, the output
tensor itself is the one output port, reshaped to ``(rows, *shape)``; :class:`Layout` keeps
how to reshape it back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from modreg.errors import InterfaceMismatch, ModregError
from modreg.runtime._ports import PortLike, as_ports
from modreg.spec.manifest import Port

__all__ = [
    "InputsMap",
    "Layout",
    "OutputsMap",
    "check_rows",
    "declare_ports",
    "default_outputs",
    "mapped",
    "port_dtype",
]

InputsMap = Callable[..., Mapping[str, Tensor]]
OutputsMap = Callable[[Any], Mapping[str, Tensor]]
_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float64: "float64"}


def declare_ports(ports: Mapping[str, PortLike]) -> tuple[dict[str, Port], set[str]]:
    """The ports, and the names whose dtype was given (the others take the captured dtype).

    Raises:
        InvalidManifest, InvalidUnit: a port name, unit, shape or dtype does not validate.
    """
    typed = {n for n, p in ports.items() if isinstance(p, Port | Mapping) and _has_dtype(p)}
    return as_ports(ports, what="captured"), typed


def _has_dtype(port: Port | Mapping[str, Any]) -> bool:
    return "dtype" in (port.model_fields_set if isinstance(port, Port) else port)


def port_dtype(tensor: Tensor) -> str:
    """The port dtype a captured tensor suggests (float32 for anything not floating)."""
    return _DTYPES.get(tensor.dtype, "float32")


def mapped(
    what: str, mapping: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Tensor]:
    """``mapping(*args, **kwargs)`` as a dict of tensors; its own failure as a modreg error.

    Raises:
        InterfaceMismatch: the mapping raised, or returned something else than port tensors.
    """
    try:
        result = mapping(*args, **kwargs)
    except ModregError:
        raise
    except Exception as exc:
        raise InterfaceMismatch(
            f"the {what} mapping failed on the submodule's call: {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}; it is called with the submodule's own "
            "arguments (outputs: with its output)"
        ) from exc
    if not isinstance(result, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in result.items()
    ):
        raise InterfaceMismatch(
            f"the {what} mapping returned {type(result).__name__}: return a dict "
            "{port name: tensor of shape (rows, *port shape)}"
        )
    return dict(result)


def check_rows(values: Mapping[str, Tensor], ports: Mapping[str, Port], what: str) -> int:
    """The row count every tensor shares, each ``(rows, *shape)`` of its declared port.

    Raises:
        InterfaceMismatch: an undeclared port, or a shape or row count that disagrees.
    """
    rows = -1
    for name, tensor in values.items():
        if name not in ports:
            raise InterfaceMismatch(
                f"the {what} mapping gives port {name!r}, which ports= does not declare: "
                f"declare it (ports={{{name!r}: 'UNIT'}}) or drop it; declared: {list(ports)}"
            )
        shape = tuple(ports[name].shape)
        if tensor.dim() != len(shape) + 1 or tuple(tensor.shape[1:]) != shape:
            raise InterfaceMismatch(
                f"port {name!r} from the {what} mapping has shape {list(tensor.shape)} but is "
                f"declared with shape {list(shape)}: give a tensor of shape "
                f"(rows{''.join(f', {d}' for d in shape)}) or fix the port's shape"
            )
        if rows >= 0 and tensor.shape[0] != rows:
            raise InterfaceMismatch(
                f"port {name!r} from the {what} mapping has {tensor.shape[0]} rows, other "
                f"ports {rows}: give every port one row per sample"
            )
        rows = int(tensor.shape[0])
    return rows


@dataclass(frozen=True)
class Layout:
    """How a default-mapped output tensor looks: ``(*lead, *tail)``, ``prod(lead) = rows``.

    ``lead`` dims are the row dims (read from the first tensor argument when it has them, else
    flattened); ``tail`` the rest, whose product is the port's size; ``dtype`` the output's.
    """

    lead: int
    tail: tuple[int, ...]
    dtype: torch.dtype

    def restore(self, values: Tensor, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Tensor:
        """The port tensor ``(rows, *shape)`` back in the submodule's output layout."""
        from modreg.capturing._batches import first_tensor

        rows = int(values.shape[0])
        like = first_tensor(args, kwargs)
        lead: tuple[int, ...] = (rows,)
        if like is not None and like.dim() >= self.lead:
            dims = tuple(int(d) for d in like.shape[: self.lead])
            lead = dims if math.prod(dims) == rows else lead
        restored = values.reshape(*lead, *self.tail).to(dtype=self.dtype)
        return restored if like is None else restored.to(device=like.device)


def default_outputs(output: Any, name: str, port: Port, rows: int) -> tuple[Tensor, Layout]:
    """The output tensor as port ``name`` ``(rows, *shape)``, and its layout.

    Raises:
        InterfaceMismatch: the output is not a tensor, or does not hold ``rows`` rows of the
            port's size.
    """
    if not isinstance(output, Tensor):
        raise InterfaceMismatch(
            f"the submodule returns {type(output).__name__}, not a tensor: pass outputs= "
            "mapping its output to {port: tensor}"
        )
    shape = tuple(int(d) for d in output.shape)
    # The fewest leading dims that hold the rows (at least one when there are any), so an
    # (E, 1) output of a scalar port keeps its trailing 1 when it is put back.
    fits = [k for k in (*range(1, len(shape) + 1), 0) if math.prod(shape[:k]) == rows]
    fits = [k for k in fits if math.prod(shape[k:]) == port.size]
    lead = fits[0] if fits else -1
    if rows < 1 or lead < 0:
        raise InterfaceMismatch(
            f"the submodule's output has shape {list(shape)}, which is not {rows} row(s) of "
            f"port {name!r} (shape {list(port.shape)}): fix the port's shape or pass outputs="
        )
    return output.reshape(rows, *port.shape), Layout(lead, shape[lead:], output.dtype)
