"""The hybrid builder: compose pulled modules and fresh blocks into one torch network.

Example:
    >>> h = Hybrid(inputs={"v": {"unit": "m/s", "shape": [3]}},
    ...            outputs={"a": {"unit": "m/s**2", "shape": [3]}})  # doctest: +SKIP
    >>> m = h.constant("m", 0.145, unit="kg")                          # doctest: +SKIP
    >>> g = h.constant("g", [0.0, 0.0, -9.81], unit="m/s**2")         # doctest: +SKIP
    >>> drag = h.add("drag", modreg.pull("physics/drag@~=1.0"), v="v", rho=1.2)  # doctest: +SKIP
    >>> fix = h.add("fix", Block.mlp({"v": ...}, {"a": ...}), v="v")  # doctest: +SKIP
    >>> h.output("a", g + drag.F / m + fix.a)                         # doctest: +SKIP
    >>> net = h.build()        # units, shapes, dtypes and wiring checked here  # doctest: +SKIP

A :class:`Hybrid` is the editable description; :meth:`Hybrid.build` turns it into a
:class:`HybridNet` (an ``nn.Module``). Pulled modules are frozen parts by default,
modules you pass in built (a :class:`Block`) trainable; those are used as is, so training the
hybrid trains them.

A hybrid's parts may be any kind of module, hybrids included, so building one recurses
through every kind: :func:`build_module` (the kind dispatch behind ``modreg.build``) and
:func:`load_hybrid` live here with the classes. What the classes delegate to lies below:
the part record (``_parts``), the replacement rule (``_replace``) and the module writer
(``_hybrid_io``, handed :func:`build_module`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from modreg.errors import GraphError, InvalidModule
from modreg.module import Module
from modreg.registry import Registry
from modreg.runtime._base import Executable
from modreg.runtime._codegen import compile_forward
from modreg.runtime._equation import NAMESPACE, build_equation, register_constants, torch_dtype
from modreg.runtime._hybrid_io import pull_parts, save_hybrid
from modreg.runtime._network import Block
from modreg.runtime._parts import Part, WireLike
from modreg.runtime._ports import PortLike, as_ports
from modreg.runtime._replace import replace_part
from modreg.runtime._terms import Term
from modreg.runtime._weights import assign_strict, load_safetensors
from modreg.runtime._wiring import Wiring, compile_wiring
from modreg.spec.graph import GraphConstant, split_ref
from modreg.spec.interface import Interface
from modreg.spec.manifest import Port

__all__ = ["Hybrid", "HybridNet", "PartHandle", "build_module", "load_hybrid"]


class PartHandle:
    """A part of a hybrid; its attributes are its output ports as :class:`Term` objects."""

    def __init__(self, name: str, interface: Interface) -> None:
        self._name = name
        self._interface = interface

    def __getattr__(self, port: str) -> Term:
        if port.startswith("_") or port not in self._interface.outputs:
            raise AttributeError(
                f"part {self._name!r} has no output port {port!r}; its outputs are "
                f"{list(self._interface.outputs)}"
            )
        return Term(f"{self._name}.{port}")

    def __repr__(self) -> str:
        return f"PartHandle({self._name!r}, {self._interface.describe()})"


class Hybrid:
    """An editable hybrid: typed ports, constants, parts and the wires between them."""

    def __init__(
        self,
        inputs: Mapping[str, PortLike],
        outputs: Mapping[str, PortLike],
        *,
        name: str | None = None,
        version: str = "0.1.0",
        summary: str = "",
    ) -> None:
        self.inputs = as_ports(inputs, what="input")
        self.outputs = as_ports(outputs, what="output")
        self.name, self.version, self.summary = name, version, summary
        self.constants: dict[str, GraphConstant] = {}
        self.parts: dict[str, Part] = {}
        self.wires: dict[str, str] = {}
        self.output_wires: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Hybrid({self.name or '<unnamed>'}, parts={list(self.parts)})"

    # -- editing -----------------------------------------------------------------------------
    def input(self, name: str) -> Term:
        """The graph input ``name`` as a term, for building output expressions."""
        if name not in self.inputs:
            raise GraphError(f"no input {name!r}; the inputs are {list(self.inputs)}")
        return Term(name)

    def constant(
        self,
        name: str,
        value: float | Sequence[float],
        unit: str = "dimensionless",
        *,
        trainable: bool = False,
    ) -> Term:
        """Declare a named constant (learnable when ``trainable``); returns it as a term."""
        if name in self.constants:
            raise GraphError(f"constant {name!r} is already declared: choose another name")
        data = [float(v) for v in value] if isinstance(value, Sequence) else float(value)
        self.constants[name] = GraphConstant(value=data, unit=unit, trainable=trainable)
        return Term(name)

    def add(
        self, name: str, part: Any, *, trainable: bool | None = None, **wires: WireLike
    ) -> PartHandle:
        """Add a part (a pulled :class:`Module` or a built module such as a :class:`Block`).

        Keyword arguments wire its input ports: ``v="v"`` (a graph input), ``x="drag.F"``
        (another part's output), ``rho=1.2`` (a constant in the port's unit), or a term.
        ``trainable`` defaults to False for a :class:`Module` (pulled, frozen) and True for a
        built module you pass in (a :class:`Block` you are training).
        """
        if name in self.parts:
            raise GraphError(f"part {name!r} already exists: choose another name or use replace()")
        if not hasattr(part, "interface"):
            kind = type(part).__name__
            raise GraphError(
                f"part {name!r}: expected a modreg Module or a built module, got {kind}"
            )
        built = isinstance(part, Executable)
        self.parts[name] = Part(part, built if trainable is None else trainable)
        for port, source in wires.items():
            self.wire(f"{name}.{port}", source)
        return PartHandle(name, self.parts[name].interface)

    def part(self, name: str) -> PartHandle:
        """The handle of an existing part."""
        if name not in self.parts:
            raise GraphError(f"no part {name!r}; the parts are {list(self.parts)}")
        return PartHandle(name, self.parts[name].interface)

    def wire(self, target: str, source: WireLike) -> None:
        """Feed ``target`` (``part.port``) from ``source`` (see :meth:`add`)."""
        part, port = _target(target)
        if part not in self.parts:
            raise GraphError(
                f"wire into {target!r}: no part {part!r}; the parts are {list(self.parts)}"
            )
        inputs = self.parts[part].interface.inputs
        if port not in inputs:
            raise GraphError(
                f"wire into {target!r}: part {part!r} has no input port {port!r}; its inputs "
                f"are {list(inputs)}"
            )
        self.wires[target] = self._text(source, inputs[port], f"{part}_{port}")

    def output(self, name: str, source: WireLike) -> None:
        """Define the hybrid output ``name`` as an expression over inputs, constants, parts."""
        if name not in self.outputs:
            raise GraphError(f"no output {name!r}; the outputs are {list(self.outputs)}")
        self.output_wires[name] = self._text(source, self.outputs[name], f"out_{name}")

    def _text(self, source: WireLike, port: Port, constant_name: str) -> str:
        if isinstance(source, Term | str):
            return str(source)
        if isinstance(source, bool):
            raise GraphError(f"cannot wire a bool ({source}): give a number, name or term")
        if isinstance(source, int | float):
            if not math.isfinite(source):
                raise GraphError(f"constant input {source} is not finite: give a finite number")
            return repr(float(source))
        self.constant(constant_name, [float(v) for v in source], port.unit)
        return constant_name

    # -- derived -----------------------------------------------------------------------------
    def wiring(self) -> Wiring:
        """The checked-at-build description of this hybrid's connections."""
        return Wiring(
            inputs=self.inputs,
            outputs=self.outputs,
            parts={name: part.interface for name, part in self.parts.items()},
            wires=self.wires,
            output_wires=self.output_wires,
            constants=self.constants,
        )

    def check(self) -> None:
        """Run every build-time check without building (wiring, units, shapes, dtypes)."""
        compile_wiring(self.wiring())

    def copy(self) -> Hybrid:
        """A shallow copy (parts are shared) that can be edited independently."""
        other = copy.copy(self)
        other.constants, other.parts = dict(self.constants), dict(self.parts)
        other.wires, other.output_wires = dict(self.wires), dict(self.output_wires)
        return other

    def replace(
        self, part: str, module: Any, *, trainable: bool | None = None, **wires: WireLike
    ) -> Hybrid:
        """A copy with ``part`` swapped for an interface-compatible ``module``.

        Existing wires into ports the new module shares are kept; wires for its new input
        ports are given as keyword arguments.

        Raises:
            GraphError: no such part.
            InterfaceMismatch: the new module's interface does not fit; the message lists
                every difference.
        """
        return replace_part(self, part, module, trainable=trainable, wires=wires)

    def build(self, *, registry: Registry | None = None, check_inputs: bool = True) -> HybridNet:
        """Check every joint and build the network (parts are built from their modules).

        Raises:
            GraphError: unknown part or port, unconnected input, missing output, cycle.
            InterfaceMismatch: incompatible units, shapes or dtypes at a joint.
        """
        instances = {}
        for name, part in self.parts.items():
            source = part.source
            instances[name] = (
                source if isinstance(source, Executable) else build_module(source, registry)
            )
        return HybridNet(self, instances, check_inputs=check_inputs)


def _target(text: str) -> tuple[str, str]:
    try:
        return split_ref(text)
    except ValueError as exc:
        raise GraphError(f"wire target {exc}") from None


class HybridNet(Executable):
    """A built hybrid: ``forward(inputs) -> outputs`` by port name; parts in ``self.parts``."""

    __jit_ignored_attributes__ = ("interface", "origin", "hybrid", "order")
    # For mypy; TorchScript reads the typing objects assigned to __annotations__ below.
    parts: nn.ModuleDict
    order: tuple[str, ...] = ()
    source = ""  # the generated forward (no annotation: TorchScript reads class annotations)

    def __new__(cls, *args: Any, **kwargs: Any) -> HybridNet:
        """Each build gets its own subclass holding the generated ``forward``.

        Called without arguments (``copy.deepcopy``) on a generated class, it just allocates.
        """
        if not args or cls.source:
            instance: HybridNet = nn.Module.__new__(cls)
            return instance
        hybrid: Hybrid = args[0]
        source, order = compile_wiring(hybrid.wiring())
        forward = compile_forward(source, NAMESPACE, hybrid.name or "hybrid")
        body = {"forward": forward, "source": source, "order": tuple(order)}
        generated = type("Hybrid", (cls,), body)
        instance = nn.Module.__new__(generated)
        return instance

    def __init__(
        self,
        hybrid: Hybrid,
        parts: Mapping[str, Executable],
        *,
        check_inputs: bool = True,
        origin: Module | None = None,
    ) -> None:
        label = origin.ref if origin is not None else (hybrid.name or "hybrid")
        super().__init__(hybrid.inputs, hybrid.outputs, label=label, origin=origin)
        self.hybrid = hybrid
        self.check_inputs = check_inputs
        self.parts = nn.ModuleDict({name: parts[name] for name in self.order})
        dtype = torch_dtype(next(iter(hybrid.outputs.values())).dtype)
        for name, part in self.parts.items():
            assert isinstance(part, Executable)
            part.check_inputs = False
            part.set_trainable(hybrid.parts[name].trainable)
        register_constants(self, hybrid.constants, dtype)

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:  # replaced per build
        raise NotImplementedError

    # -- training controls -------------------------------------------------------------------
    def freeze(self, *names: str) -> HybridNet:
        """Stop training the named parts or constants (all when no name is given)."""
        self._set(names, False)
        return self

    def unfreeze(self, *names: str) -> HybridNet:
        """Let training change the named parts or constants (all when no name is given)."""
        self._set(names, True)
        return self

    def _set(self, names: tuple[str, ...], trainable: bool) -> None:
        constants = [n for n in self.hybrid.constants if self.hybrid.constants[n].trainable]
        for name in names or (*self.parts, *constants):
            if name in self.parts:
                part = self.parts[name]
                assert isinstance(part, Executable)
                part.set_trainable(trainable)
            elif name in constants:
                getattr(self, f"const_{name}").requires_grad_(trainable)
            else:
                raise GraphError(
                    f"no part or trainable constant {name!r}; parts: {list(self.parts)}, "
                    f"trainable constants: {constants}"
                )

    def is_trainable(self, part: str) -> bool:
        """Whether training currently changes ``part`` (some parameter requires grad)."""
        return any(p.requires_grad for p in self.parts[part].parameters())

    def trainable_state(self) -> dict[str, Tensor]:
        state: dict[str, Tensor] = {}
        for name, part in self.parts.items():
            assert isinstance(part, Executable)
            state |= {f"parts.{name}.{k}": v for k, v in part.trainable_state().items()}
        for name, constant in self.hybrid.constants.items():
            if constant.trainable:
                state[f"const_{name}"] = getattr(self, f"const_{name}").detach()
        return state

    def load_trainable_state(self, tensors: Mapping[str, Tensor]) -> None:
        """Route ``parts.<name>.*`` tensors to each part (which checks them), and constants."""
        by_part: dict[str, dict[str, Tensor]] = {}
        own: dict[str, Tensor] = {}
        for key, tensor in tensors.items():
            _, _, rest = key.partition("parts.")
            part, _, inner = rest.partition(".")
            if key.startswith("parts.") and part in self.parts:
                by_part.setdefault(part, {})[inner] = tensor
            else:
                own[key] = tensor
        for part, part_tensors in by_part.items():
            module = self.parts[part]
            assert isinstance(module, Executable)
            module.load_trainable_state(part_tensors)
        expected = {k: v for k, v in self.trainable_state().items() if not k.startswith("parts.")}
        assign_strict(self, expected, own, owner=self.label)

    # -- editing, saving ---------------------------------------------------------------------
    def replace(
        self, part: str, module: Any, *, trainable: bool | None = None, **wires: WireLike
    ) -> HybridNet:
        """A new network with ``part`` swapped (other parts and constants are shared).

        Raises:
            InterfaceMismatch: the new module does not fit (see :meth:`Hybrid.replace`).
        """
        hybrid = self.hybrid.replace(part, module, trainable=trainable, **wires)
        new = hybrid.parts[part].source
        instances: dict[str, Executable] = {}
        for name, built in self.parts.items():
            assert isinstance(built, Executable)
            instances[name] = built
        instances[part] = new if isinstance(new, Executable) else build_module(new, None)
        net = HybridNet(hybrid, instances, check_inputs=self.check_inputs)
        with torch.no_grad():
            for name in hybrid.constants:
                getattr(net, f"const_{name}").copy_(getattr(self, f"const_{name}"))
        return net

    def save(
        self,
        directory: str | Path,
        *,
        name: str | None = None,
        version: str | None = None,
        summary: str | None = None,
    ) -> Module:
        """Write this hybrid as a module directory (manifest, lockfile, trained weights).

        Raises:
            GraphError: a part is a fresh block not yet saved as a module.
        """
        hybrid = replace_meta(self.hybrid, name=name, version=version, summary=summary)
        return save_hybrid(self, hybrid, Path(directory), build=_build_default)


HybridNet.__annotations__ = dict(Executable.__annotations__)


def replace_meta(hybrid: Hybrid, **fields: str | None) -> Hybrid:
    """A copy of ``hybrid`` with name, version or summary changed where given."""
    other = hybrid.copy()
    for key, value in fields.items():
        if value is not None:
            setattr(other, key, value)
    return other


def build_module(module: Module, registry: Registry | None) -> Executable:
    """The torch form of a module of any kind (``modreg.build`` without its options).

    Raises:
        InvalidWeights, IntegrityError, GraphError, InterfaceMismatch: see ``modreg.build``.
    """
    kind = module.manifest.kind
    if kind == "equation":
        return build_equation(module.manifest, origin=module)
    if kind == "network":
        return Block.load(module)
    if kind == "hybrid":
        return load_hybrid(module, registry)
    raise InvalidModule(  # pragma: no cover - the manifest model allows only these kinds
        f"{module.ref}: cannot build a module of kind {kind!r}"
    )


def _build_default(module: Module) -> Executable:
    return build_module(module, None)


def load_hybrid(module: Module, registry: Registry | None) -> HybridNet:
    """Rebuild a hybrid module: pull and verify its parts, wire them, load its weights.

    Raises:
        IntegrityError: a part's digest differs from the lockfile's.
        InvalidModule: lockfile and ``requires`` disagree.
        InvalidWeights: the weights hold unknown or frozen tensors, or wrong shapes or dtypes.
    """
    manifest = module.manifest
    assert manifest.graph is not None
    pulled = pull_parts(module, registry if registry is not None else Registry())
    graph = manifest.graph
    hybrid = Hybrid(
        manifest.inputs,
        manifest.outputs,
        name=manifest.name,
        version=manifest.version,
        summary=manifest.summary,
    )
    hybrid.constants = dict(graph.constants)
    hybrid.parts = {
        name: Part(pulled[spec.module], spec.trainable) for name, spec in graph.parts.items()
    }
    hybrid.wires, hybrid.output_wires = dict(graph.wires), dict(graph.outputs)
    net = hybrid.build(registry=registry)
    net.origin, net.label = module, module.ref
    if manifest.weights:
        net.load_trainable_state(load_safetensors(module.file(manifest.weights)))
    return net
