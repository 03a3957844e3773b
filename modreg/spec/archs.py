"""The closed catalogue of network architectures a module may declare.

A network module never carries code: its manifest names an architecture from this catalogue
and its weights file holds exactly the tensors listed by :func:`expected_tensors`. The torch
side (``modreg.runtime``) builds the matching ``nn.Module``; this file is pure data so the
registry can validate weights without importing torch.

Tensor layout (``n_in`` = flattened input size, ``n_out`` = flattened output size):

- ``mlp``:    ``layers.{i}.weight`` ``(out, in)`` and ``layers.{i}.bias`` ``(out,)`` for each of
  ``len(hidden) + 1`` affine layers; activation between them, none after the last.
- ``resmlp``: ``input.weight (width, n_in)``, ``input.bias``; per block ``blocks.{i}.weight
  (width, width)``, ``blocks.{i}.bias`` with ``h = h + act(W h + b)``; ``output.weight
  (n_out, width)``, ``output.bias``.
- every tensor has the spec's ``dtype`` (``float32`` unless declared).
- ``normalize: true`` adds fixed affine maps ``in_shift, in_scale (n_in,)`` applied as
  ``(x - in_shift) / in_scale`` and ``out_shift, out_scale (n_out,)`` applied as
  ``y * out_scale + out_shift``.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ACTIVATIONS", "MLPSpec", "NetworkSpec", "ResMLPSpec", "expected_tensors"]

Activation = Literal["tanh", "relu", "gelu", "silu", "softplus", "sigmoid", "elu"]
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "gelu", "silu", "softplus", "sigmoid", "elu")
Width = Annotated[int, Field(ge=1, le=65536)]


class MLPSpec(BaseModel):
    """A plain multi-layer perceptron."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Literal["mlp"]
    hidden: Annotated[list[Width], Field(max_length=64)]
    activation: Activation = "tanh"
    normalize: bool = False
    dtype: Literal["float32", "float64"] = "float32"


class ResMLPSpec(BaseModel):
    """An MLP with residual blocks of constant width."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Literal["resmlp"]
    width: Width
    blocks: Annotated[int, Field(ge=1, le=256)]
    activation: Activation = "tanh"
    normalize: bool = False
    dtype: Literal["float32", "float64"] = "float32"


NetworkSpec = Annotated[MLPSpec | ResMLPSpec, Field(discriminator="arch")]


def expected_tensors(
    spec: MLPSpec | ResMLPSpec, n_in: int, n_out: int
) -> dict[str, tuple[int, ...]]:
    """The exact tensor names and shapes a weights file must hold for ``spec``."""
    tensors: dict[str, tuple[int, ...]] = {}
    if isinstance(spec, MLPSpec):
        sizes = [n_in, *spec.hidden, n_out]
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            tensors[f"layers.{i}.weight"] = (fan_out, fan_in)
            tensors[f"layers.{i}.bias"] = (fan_out,)
    else:
        tensors["input.weight"] = (spec.width, n_in)
        tensors["input.bias"] = (spec.width,)
        for i in range(spec.blocks):
            tensors[f"blocks.{i}.weight"] = (spec.width, spec.width)
            tensors[f"blocks.{i}.bias"] = (spec.width,)
        tensors["output.weight"] = (n_out, spec.width)
        tensors["output.bias"] = (n_out,)
    if spec.normalize:
        tensors |= {
            "in_shift": (n_in,),
            "in_scale": (n_in,),
            "out_shift": (n_out,),
            "out_scale": (n_out,),
        }
    return tensors
