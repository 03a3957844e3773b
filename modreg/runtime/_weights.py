"""Strict tensor loading: safetensors in, exact names, shapes and dtypes, never a silent cast."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor

from modreg.errors import InvalidWeights

__all__ = ["assign_strict", "load_safetensors", "save_safetensors"]


def load_safetensors(path: Path) -> dict[str, Tensor]:
    """Read a safetensors file (no pickle), translating its errors into InvalidWeights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors: dict[str, Tensor] = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidWeights(
            f"{path.name}: cannot read as safetensors ({exc}): save weights with "
            "safetensors.torch.save_file"
        ) from exc
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InvalidWeights(f"{path.name}: tensor {name!r} holds NaN or Inf values")
    return tensors


def save_safetensors(tensors: Mapping[str, Tensor], path: Path) -> None:
    """Write tensors (detached, contiguous, on CPU) as a safetensors file."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def assign_strict(
    module: nn.Module, expected: Mapping[str, Tensor], given: Mapping[str, Tensor], *, owner: str
) -> None:
    """Copy ``given`` into ``module``'s tensors of the same names; every name must be expected.

    Raises:
        InvalidWeights: an unexpected name, or a shape or dtype that differs from the module's.
    """
    unknown = sorted(set(given) - set(expected))
    if unknown:
        raise InvalidWeights(
            f"{owner}: weights hold {unknown[:5]} which this module cannot take (its trainable "
            f"tensors are {sorted(expected)[:8]}): frozen values come from the module itself"
        )
    for name, tensor in given.items():
        target = expected[name]
        if tuple(tensor.shape) != tuple(target.shape):
            raise InvalidWeights(
                f"{owner}: tensor {name!r} has shape {list(tensor.shape)}, "
                f"expected {list(target.shape)}"
            )
        if tensor.dtype != target.dtype:
            raise InvalidWeights(
                f"{owner}: tensor {name!r} is {tensor.dtype} but the module holds "
                f"{target.dtype}: save it as {target.dtype} (modreg never casts silently)"
            )
    state = dict(module.named_parameters()) | dict(module.named_buffers())
    with torch.no_grad():
        for name, tensor in given.items():
            state[name].copy_(tensor)
