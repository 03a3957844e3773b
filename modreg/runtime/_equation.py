"""Equation modules as torch: generated ``forward``, constants as buffers or parameters.

Each output's expression is parsed by the safe grammar, printed to torch code by
:class:`~modreg.runtime._codegen.Printer` and compiled once per build. Exact numbers are folded
into float literals; named constants become buffers (``const_<name>``), or ``nn.Parameter``
when the manifest marks them ``trainable: true``, so a hybrid can learn them. The generated
source is kept on the instance (``module.source``) for inspection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
from torch import Tensor

from modreg.errors import InterfaceMismatch, InvalidModule, InvalidWeights
from modreg.runtime._base import Executable, check_inputs
from modreg.runtime._codegen import Operand, Printer, compile_forward
from modreg.spec.expr import parse_expression
from modreg.spec.graph import GraphConstant
from modreg.spec.manifest import Constant, Manifest, Port

if TYPE_CHECKING:
    from modreg.module import Module

__all__ = [
    "EquationModule",
    "build_equation",
    "forward_source",
    "register_constants",
    "torch_dtype",
]

NAMESPACE: dict[str, Any] = {
    "torch": torch,
    "Dict": dict,
    "List": list,
    "Tensor": Tensor,
    "check_inputs": check_inputs,
}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a port or network dtype name (``float32`` ...)."""
    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype)
    return dtype


def register_constants(
    module: nn.Module, constants: Mapping[str, Constant | GraphConstant], dtype: torch.dtype
) -> None:
    """Give ``module`` one tensor ``const_NAME`` per constant: a parameter when trainable."""
    for name, constant in constants.items():
        value = torch.tensor(constant.value, dtype=dtype)
        if constant.trainable:
            module.register_parameter(f"const_{name}", nn.Parameter(value))
        else:
            module.register_buffer(f"const_{name}", value)


def forward_source(inputs: list[str], body: list[str], returns: Mapping[str, str]) -> str:
    """The text of a ``forward(self, inputs)`` reading ports, running ``body``, returning a dict."""
    lines = [
        "def forward(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:",
        "    if self.check_inputs:",
        "        check_inputs(inputs, self.input_names, self.input_shapes, self.label)",
    ]
    lines += [f"    p_{name} = inputs[{name!r}]" for name in inputs]
    if any("batch" in line for line in body):
        lines.append(f"    batch = p_{inputs[0]}.shape[0]")
    lines += [f"    {line}" for line in body]
    items = ", ".join(f"{name!r}: {code}" for name, code in returns.items())
    lines.append(f"    return {{{items}}}")
    return "\n".join(lines) + "\n"


class EquationModule(Executable):
    """An equation module compiled to torch; see :func:`build_equation`."""

    __jit_ignored_attributes__ = ("interface", "origin", "expressions", "manifest")
    source = ""  # the generated forward (no annotation: TorchScript reads class annotations)

    def __init__(
        self, manifest: Manifest, expressions: dict[str, Any], origin: Module | None
    ) -> None:
        super().__init__(manifest.inputs, manifest.outputs, label=manifest.ref, origin=origin)
        self.manifest = manifest
        self.expressions = expressions
        dtype = torch_dtype(next(iter(manifest.outputs.values())).dtype)
        register_constants(self, manifest.constants, dtype)

    def load_trainable_state(self, tensors: Mapping[str, Tensor]) -> None:
        """Overwrite learned constants; a frozen constant (``trainable: false``) is refused.

        Raises:
            InvalidWeights: a frozen or unknown constant, or a shape or dtype mismatch.
        """
        frozen = [n for n in tensors if n.startswith("const_") and n not in self.trainable_state()]
        frozen = [n for n in frozen if n.removeprefix("const_") in self.manifest.constants]
        if frozen:
            name = frozen[0].removeprefix("const_")
            raise InvalidWeights(
                f"{self.label}: constant {name!r} is frozen (trainable: false in its manifest) "
                "but the weights give it a value: a frozen constant comes only from the manifest"
            )
        super().load_trainable_state(tensors)


def build_equation(manifest: Manifest, *, origin: Module | None = None) -> EquationModule:
    """Compile an equation module's manifest into a torch module.

    Raises:
        InvalidModule: the equation has no input port (no batch size to follow).
        InvalidExpression: an expression outside the grammar.
        InterfaceMismatch: an expression's shape differs from its output port's.
    """
    if manifest.kind != "equation" or not manifest.equation:
        raise InvalidModule(f"{manifest.ref} is a {manifest.kind} module, not an equation")
    if not manifest.inputs:
        raise InvalidModule(
            f"{manifest.ref} has no input port: a built equation needs one to know the batch size"
        )
    names = [*manifest.inputs, *manifest.constants]
    operands = {
        n: Operand(f"p_{n}", port.shape, batched=True) for n, port in manifest.inputs.items()
    }
    operands |= {n: Operand(f"self.const_{n}", c.shape) for n, c in manifest.constants.items()}
    printer = Printer(operands)
    like = f"p_{next(iter(manifest.inputs))}"
    expressions: dict[str, Any] = {}
    returns: dict[str, str] = {}
    for output, text in manifest.equation.items():
        expressions[output] = parse_expression(text, names)
        operand = printer.output(expressions[output], like)
        _check_shape(manifest.ref, output, manifest.outputs[output], operand)
        returns[output] = operand.code
    source = forward_source(list(manifest.inputs), printer.lines, returns)
    forward = compile_forward(source, NAMESPACE, manifest.ref)
    cls = type("Equation", (EquationModule,), {"forward": forward, "source": source})
    module: EquationModule = cls(manifest, expressions, origin)
    return module


def _check_shape(ref: str, output: str, port: Port, operand: Operand) -> None:
    if operand.shape != port.shape:
        raise InterfaceMismatch(
            f"{ref}: equation for {output!r} has shape {list(operand.shape)} but the port "
            f"declares {list(port.shape)}: fix the expression or the port's shape"
        )
