"""What every executable modreg module shares: dict-of-tensors calls and input checks.

Every module :func:`modreg.build` returns (equation, network block, hybrid) is an
:class:`Executable`: ``forward(inputs: Dict[str, Tensor]) -> Dict[str, Tensor]`` with tensors
keyed by port name, batched along the first axis (a scalar port is ``(batch,)``, a ``[3]``
port ``(batch, 3)``). One signature for every kind keeps them interchangeable inside a hybrid
and keeps TorchScript happy.

Input checks run at the top of ``forward``: a missing port, a wrong shape or a NaN/Inf value
raises :class:`~modreg.errors.InputError` naming the port and the expected shape. They cost
one reduction per input; turn them off with ``module.check_inputs = False`` (or
``build(..., check_inputs=False)``) once the data is trusted. Parts inside a hybrid never
re-check: the hybrid checks its own inputs once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from torch import Tensor

from modreg.errors import InputError
from modreg.runtime._weights import assign_strict
from modreg.spec.interface import Interface
from modreg.spec.manifest import Port

if TYPE_CHECKING:
    from modreg.module import Module

__all__ = ["Executable", "check_inputs", "shape_text"]


def shape_text(shape: list[int]) -> str:
    """``(batch,)`` or ``(batch, 3)``: how a port's tensor must look."""
    if len(shape) == 0:
        return "(batch,)"
    text = "(batch"
    for size in shape:
        text += ", " + str(size)
    return text + ")"


def check_inputs(
    inputs: dict[str, Tensor], names: list[str], shapes: list[list[int]], owner: str
) -> None:
    """Raise :class:`InputError` unless every port is present, well-shaped and finite.

    Written in the TorchScript subset so that scripted and exported models keep the check.
    """
    batch = -1
    for i in range(len(names)):
        name = names[i]
        expected = shapes[i]
        if name not in inputs:
            raise InputError(
                owner
                + ": input port '"
                + name
                + "' is missing: pass a tensor of shape "
                + shape_text(expected)
            )
        value = inputs[name]
        if value.dim() != len(expected) + 1 or list(value.shape[1:]) != expected:
            raise InputError(
                owner
                + ": input port '"
                + name
                + "' has shape "
                + str(list(value.shape))
                + ", expected "
                + shape_text(expected)
            )
        if batch >= 0 and value.shape[0] != batch:
            raise InputError(
                owner
                + ": input port '"
                + name
                + "' has batch size "
                + str(value.shape[0])
                + " but earlier ports have "
                + str(batch)
                + ": give every port the same batch"
            )
        batch = value.shape[0]
        if not bool(torch.isfinite(value).all()):
            raise InputError(
                owner + ": input port '" + name + "' holds NaN or Inf values: clean the data "
                "(or set check_inputs = False to skip this check)"
            )


class Executable(nn.Module):
    """Base of every module modreg builds: ports in, ports out, checked at the door."""

    __jit_ignored_attributes__: tuple[str, ...] = ("interface", "origin")

    def __init__(
        self,
        inputs: Mapping[str, Port],
        outputs: Mapping[str, Port],
        *,
        label: str,
        origin: Module | None = None,
    ) -> None:
        super().__init__()
        self.interface = Interface(dict(inputs), dict(outputs))
        self.origin = origin
        self.label = label
        self.check_inputs = True
        self.input_names: list[str] = list(inputs)
        self.input_shapes: list[list[int]] = [list(port.shape) for port in inputs.values()]

    def trainable_state(self) -> dict[str, Tensor]:
        """The tensors training may change (saved with a hybrid that trains this part)."""
        return {name: p.detach() for name, p in self.named_parameters()}

    def load_trainable_state(self, tensors: Mapping[str, Tensor]) -> None:
        """Overwrite trainable tensors (strict: known names, equal shapes and dtypes).

        Raises:
            InvalidWeights: an unknown or frozen tensor, or a shape or dtype that differs.
        """
        assign_strict(self, self.trainable_state(), tensors, owner=self.label)

    def set_trainable(self, trainable: bool) -> None:
        """Let training change this module's parameters, or freeze them."""
        for parameter in self.parameters():
            parameter.requires_grad_(trainable)

    def extra_repr(self) -> str:
        return f"{self.label}: {self.interface.describe()}"


# Evaluated types (not strings) so TorchScript can type empty lists (scalar ports' shapes);
# subclasses without annotations of their own inherit these.
Executable.__annotations__ = {"input_names": list[str], "input_shapes": list[list[int]]}
