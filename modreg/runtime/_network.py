"""Network modules as torch: the closed architecture catalogue, strict weights, fresh blocks.

A :class:`Block` is a network with typed ports. Inputs are flattened and concatenated in port
order, run through the architecture named in the manifest (:mod:`modreg.spec.archs`), and
the result is split in output-port order and reshaped to each port's shape. Parameter names
are exactly the catalogue's tensor names, so a weights file loads with ``strict=True``.

``resmlp`` computes ``h = input(x)``, then ``h = h + act(block_i(h))`` per block, then
``y = output(h)`` (no activation after the input projection).

Build one from a pulled module (:meth:`Block.load`) or fresh for training
(:meth:`Block.mlp`, :meth:`Block.resmlp`), then :meth:`Block.save` it as a module directory
ready for ``modreg publish``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn as nn
import yaml
from torch import Tensor

from modreg.errors import InvalidManifest, InvalidModule, InvalidWeights
from modreg.runtime._base import Executable, check_inputs
from modreg.runtime._equation import torch_dtype
from modreg.runtime._ports import PortLike, as_ports
from modreg.runtime._weights import assign_strict, load_safetensors, save_safetensors
from modreg.spec.archs import Activation, MLPSpec, ResMLPSpec, expected_tensors
from modreg.spec.manifest import Manifest, Port, parse_manifest

if TYPE_CHECKING:
    from modreg.module import Module

__all__ = ["Block"]

WEIGHTS_FILE = "weights.safetensors"
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
}
NetworkSpec = MLPSpec | ResMLPSpec


class Block(Executable):
    """A network part with typed ports; trainable, savable as a network module."""

    __jit_ignored_attributes__ = ("interface", "origin", "spec")
    # For mypy; TorchScript reads the typing objects assigned to __annotations__ below.
    in_shift: Tensor
    in_scale: Tensor
    out_shift: Tensor
    out_scale: Tensor

    def __init__(
        self,
        spec: NetworkSpec,
        inputs: Mapping[str, Port],
        outputs: Mapping[str, Port],
        *,
        label: str = "block",
        origin: Module | None = None,
    ) -> None:
        super().__init__(inputs, outputs, label=label, origin=origin)
        self.spec = spec
        self.input_sizes = [port.size for port in inputs.values()]
        self.output_names = list(outputs)
        self.output_shapes = [list(port.shape) for port in outputs.values()]
        self.output_sizes = [port.size for port in outputs.values()]
        self.normalize = spec.normalize
        self.act = _ACTIVATIONS[spec.activation]()
        dtype = torch_dtype(spec.dtype)
        n_in, n_out = sum(self.input_sizes), sum(self.output_sizes)
        self._normalization(inputs, outputs, dtype)
        self._layers(n_in, n_out, dtype)

    def _layers(self, n_in: int, n_out: int, dtype: torch.dtype) -> None:
        raise NotImplementedError

    def _normalization(
        self, inputs: Mapping[str, Port], outputs: Mapping[str, Port], dtype: torch.dtype
    ) -> None:
        """Shift/scale buffers from port ranges (identity, and not saved, without normalize)."""
        in_shift, in_scale = _range_affine(inputs.values(), dtype)
        out_shift, out_scale = _range_affine(outputs.values(), dtype)
        persistent = self.spec.normalize
        self.register_buffer("in_shift", in_shift, persistent=persistent)
        self.register_buffer("in_scale", in_scale, persistent=persistent)
        self.register_buffer("out_shift", out_shift, persistent=persistent)
        self.register_buffer("out_scale", out_scale, persistent=persistent)

    def core(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.check_inputs:
            check_inputs(inputs, self.input_names, self.input_shapes, self.label)
        batch = inputs[self.input_names[0]].shape[0]
        flat: list[Tensor] = []
        for i in range(len(self.input_names)):
            flat.append(inputs[self.input_names[i]].reshape(batch, self.input_sizes[i]))
        x = torch.cat(flat, dim=1)
        if self.normalize:
            x = (x - self.in_shift) / self.in_scale
        y = self.core(x)
        if self.normalize:
            y = y * self.out_scale + self.out_shift
        out: dict[str, Tensor] = {}
        start = 0
        for i in range(len(self.output_names)):
            size = self.output_sizes[i]
            out[self.output_names[i]] = y[:, start : start + size].reshape(
                [batch] + self.output_shapes[i]
            )
            start += size
        return out

    # -- constructors ------------------------------------------------------------------------
    @staticmethod
    def mlp(
        inputs: Mapping[str, PortLike],
        outputs: Mapping[str, PortLike],
        *,
        hidden: Sequence[int] = (64, 64),
        activation: Activation = "tanh",
        normalize: bool = False,
        dtype: Literal["float32", "float64"] = "float32",
    ) -> Block:
        """A fresh, randomly initialised MLP block (seed with ``torch.manual_seed``).

        With ``normalize=True`` inputs and outputs are scaled from the ports' ``range``
        (see :meth:`fit_normalization` to scale either side from data instead).

        Raises:
            InvalidManifest: a port name is not an identifier, a keyword, or a name the
                equation grammar reserves (checked here, not after training at ``save``).

        Example:
            >>> block = Block.mlp({"v": {"unit": "m/s", "shape": [3]}}, {"a": "m/s**2"})
        """
        spec = MLPSpec(
            arch="mlp", hidden=list(hidden), activation=activation, normalize=normalize, dtype=dtype
        )
        return new_block(spec, as_ports(inputs, what="input"), as_ports(outputs, what="output"))

    @staticmethod
    def resmlp(
        inputs: Mapping[str, PortLike],
        outputs: Mapping[str, PortLike],
        *,
        width: int = 64,
        blocks: int = 2,
        activation: Activation = "tanh",
        normalize: bool = False,
        dtype: Literal["float32", "float64"] = "float32",
    ) -> Block:
        """A fresh residual MLP block of constant ``width`` with ``blocks`` residual blocks."""
        spec = ResMLPSpec(
            arch="resmlp",
            width=width,
            blocks=blocks,
            activation=activation,
            normalize=normalize,
            dtype=dtype,
        )
        return new_block(spec, as_ports(inputs, what="input"), as_ports(outputs, what="output"))

    @staticmethod
    def load(module: Module) -> Block:
        """Build a pulled network module with its weights (strict: names, shapes, dtypes).

        Raises:
            InvalidWeights: a tensor is missing, unexpected, mis-shaped or of another dtype.
        """
        block = block_from_manifest(module.manifest, origin=module)
        assert module.manifest.weights is not None
        tensors = load_safetensors(module.file(module.manifest.weights))
        expected = dict(block.state_dict())
        missing = sorted(set(expected) - set(tensors))
        if missing:
            raise InvalidWeights(f"{module.ref}: weights lack tensors {missing[:5]}")
        assign_strict(block, expected, tensors, owner=module.ref)
        return block

    def trainable_state(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.state_dict().items()}

    def fit_normalization(
        self,
        inputs: Mapping[str, Tensor] | None,
        outputs: Mapping[str, Tensor] | None,
    ) -> None:
        """Set the normalisation from data (mean and standard deviation per feature).

        Pass ``None`` for a side to keep its scaling from the ports' ranges: the usual case
        is ``fit_normalization(None, outputs)``, since inputs declare the ranges the network
        is valid on while outputs rarely do, and an unscaled output slows training.
        """
        if not self.normalize:
            raise InvalidModule("fit_normalization needs a block built with normalize=True")
        with torch.no_grad():
            for names, shift, scale, data in (
                (self.input_names, self.in_shift, self.in_scale, inputs),
                (self.output_names, self.out_shift, self.out_scale, outputs),
            ):
                if data is None:
                    continue
                flat = torch.cat([data[n].reshape(len(data[n]), -1) for n in names], dim=1)
                shift.copy_(flat.mean(0))
                scale.copy_(flat.std(0).clamp_min(1e-12))

    def save(
        self,
        directory: str | Path,
        *,
        name: str,
        version: str = "0.1.0",
        summary: str = "",
        description: str | None = None,
        provenance: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> Module:
        """Write this block as a network module directory (manifest + safetensors).

        The block remembers the module it became, so a hybrid holding it can be saved too.

        Raises:
            InvalidManifest: the name, version or other fields do not validate.
        """
        from modreg.module import Module

        target = Path(directory)
        data: dict[str, Any] = {"name": name, "version": version, "kind": "network"}
        data |= {"summary": summary, "description": description}
        data |= {
            "inputs": _port_data(self.interface.inputs),
            "outputs": _port_data(self.interface.outputs),
        }
        data |= {
            "network": self.spec.model_dump(mode="json", exclude_defaults=True)
            | {"arch": self.spec.arch}
        }
        data |= {
            "weights": WEIGHTS_FILE,
            "provenance": dict(provenance or {}),
            "metrics": dict(metrics or {}),
        }
        manifest = parse_manifest(
            yaml.safe_dump({k: v for k, v in data.items() if v is not None}, sort_keys=False)
        )
        target.mkdir(parents=True, exist_ok=True)
        save_safetensors(self.state_dict(), target / WEIGHTS_FILE)
        from modreg.spec.manifest import dump_manifest

        (target / "modreg.yaml").write_text(dump_manifest(manifest))
        module = Module.from_dir(target)
        self.origin, self.label = module, module.ref
        return module


# Evaluated types (not strings) so TorchScript can type empty lists (scalar ports' shapes).
Block.__annotations__ = Executable.__annotations__ | {
    "input_sizes": list[int],
    "output_names": list[str],
    "output_shapes": list[list[int]],
    "output_sizes": list[int],
}


class _MLPBlock(Block):
    def _layers(self, n_in: int, n_out: int, dtype: torch.dtype) -> None:
        assert isinstance(self.spec, MLPSpec)
        sizes = [n_in, *self.spec.hidden, n_out]
        self.layers = nn.ModuleList(
            nn.Linear(a, b, dtype=dtype) for a, b in itertools.pairwise(sizes)
        )

    def core(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.act(x)
        return x


class _ResMLPBlock(Block):
    def _layers(self, n_in: int, n_out: int, dtype: torch.dtype) -> None:
        assert isinstance(self.spec, ResMLPSpec)
        width = self.spec.width
        self.input = nn.Linear(n_in, width, dtype=dtype)
        self.blocks = nn.ModuleList(
            nn.Linear(width, width, dtype=dtype) for _ in range(self.spec.blocks)
        )
        self.output = nn.Linear(width, n_out, dtype=dtype)

    def core(self, x: Tensor) -> Tensor:
        h = self.input(x)
        for block in self.blocks:
            h = h + self.act(block(h))
        out: Tensor = self.output(h)
        return out


def new_block(
    spec: NetworkSpec,
    inputs: Mapping[str, Port],
    outputs: Mapping[str, Port],
    *,
    label: str = "block",
    origin: Module | None = None,
) -> Block:
    """A block of ``spec``'s architecture with fresh (torch default) initialisation."""
    if not inputs or not outputs:
        raise InvalidModule("a block needs at least one input and one output port")
    _check_port_names(inputs, outputs)
    cls = _MLPBlock if isinstance(spec, MLPSpec) else _ResMLPBlock
    block = cls(spec, inputs, outputs, label=label, origin=origin)
    n_in, n_out = sum(block.input_sizes), sum(block.output_sizes)
    names = {k for k, _ in block.state_dict().items()}
    assert names == set(expected_tensors(spec, n_in, n_out)), "catalogue and runtime disagree"
    return block


def _check_port_names(inputs: Mapping[str, Port], outputs: Mapping[str, Port]) -> None:
    """The names ``save`` would refuse, refused before any training is spent on the block."""
    from modreg.spec.manifest import _check_identifier

    for name in [*inputs, *outputs]:
        try:
            _check_identifier(name, "port")
        except ValueError as exc:
            raise InvalidManifest(str(exc)) from None
    shared = sorted(set(inputs) & set(outputs))
    if shared:
        raise InvalidManifest(
            f"port {shared[0]!r} is both an input and an output: give the output another name"
        )


def block_from_manifest(manifest: Manifest, *, origin: Module | None = None) -> Block:
    """A freshly initialised block with a network manifest's architecture and ports."""
    if manifest.kind != "network" or manifest.network is None:
        raise InvalidModule(f"{manifest.ref} is a {manifest.kind} module, not a network")
    return new_block(
        manifest.network, manifest.inputs, manifest.outputs, label=manifest.ref, origin=origin
    )


def _range_affine(ports: Any, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    shifts: list[float] = []
    scales: list[float] = []
    for port in ports:
        low, high = port.range if port.range else (-1.0, 1.0)
        shifts += [(low + high) / 2] * port.size
        scales += [(high - low) / 2] * port.size
    return torch.tensor(shifts, dtype=dtype), torch.tensor(scales, dtype=dtype)


def _port_data(ports: Mapping[str, Port]) -> dict[str, Any]:
    return {
        name: port.model_dump(mode="json", exclude_defaults=True) for name, port in ports.items()
    }
