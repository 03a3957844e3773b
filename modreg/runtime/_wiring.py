"""Hybrid wiring -> one generated ``forward``: checks every joint at build time.

The wiring of a hybrid (see :mod:`modreg.spec.graph`) is compiled to a single Python function
by the same printer as equations: graph inputs are read once, each part is called in
dependency order with its input ports computed from their wire expressions, and the outputs
are combined as written. So a built hybrid costs what the hand-written composition costs.

Every joint is checked here, before any tensor flows:

- structure: unknown parts or ports, unconnected inputs, missing outputs, cycles (GraphError);
- units: each wire's expression is evaluated in SI base units (every reference scaled to
  base units, the result scaled back to the target port's unit), so ``km`` into ``m`` inserts
  a factor 1000 and a sum of ``N/kg`` and ``m/s**2`` terms just works; incompatible
  dimensions raise InterfaceMismatch naming both ports and their units;
- shapes and dtypes of every reference against the target port (InterfaceMismatch).

A wire that is a bare number is a constant input in the target port's own unit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from modreg.errors import DimensionError, GraphError, InterfaceMismatch, InvalidExpression
from modreg.runtime._codegen import Operand, Printer
from modreg.runtime._equation import forward_source
from modreg.spec.equations import expression_unit
from modreg.spec.expr import parse_expression
from modreg.spec.graph import GraphConstant, split_ref
from modreg.spec.interface import Interface
from modreg.spec.manifest import Port
from modreg.spec.units import describe_dimension, parse_unit, unit_registry

__all__ = ["Wiring", "compile_wiring"]

_REF_RE = re.compile(r"(?<![\w.])([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_SEP = "__"


@dataclass(frozen=True)
class Wiring:
    """Everything needed to compile a hybrid's forward: ports, constants, parts and wires."""

    inputs: Mapping[str, Port]
    outputs: Mapping[str, Port]
    parts: Mapping[str, Interface]
    wires: Mapping[str, str]
    output_wires: Mapping[str, str]
    constants: Mapping[str, GraphConstant] = field(default_factory=dict)


@dataclass(frozen=True)
class _Source:
    """What an expression may refer to: its unit, shape and dtype (None: follows the target)."""

    unit: str
    shape: tuple[int, ...]
    dtype: str | None
    label: str


def _mangle(text: str) -> str:
    return _REF_RE.sub(lambda m: f"{m.group(1)}{_SEP}{m.group(2)}", text)


def _demangle(text: str) -> str:
    return re.sub(r"([A-Za-z][A-Za-z0-9_]*?)__([A-Za-z_][A-Za-z0-9_]*)", r"\1.\2", text)


def compile_wiring(wiring: Wiring) -> tuple[str, list[str]]:
    """Check a hybrid's wiring and generate its ``forward`` source.

    Returns:
        The source text and the parts in execution order.

    Raises:
        GraphError: unknown part or port, unconnected input, missing output, cycle.
        InterfaceMismatch: incompatible units, shapes or dtypes at a joint.
    """
    _check_names(wiring)
    _check_targets(wiring)
    sources = _sources(wiring)
    exprs = {t: _parse(text, t, wiring, sources) for t, text in wiring.wires.items()}
    outs = {t: _parse(text, t, wiring, sources) for t, text in wiring.output_wires.items()}
    order = _order(wiring, exprs)
    return _Generator(wiring, sources).source(order, exprs, outs), order


def _check_names(wiring: Wiring) -> None:
    if not wiring.inputs:
        raise GraphError("a hybrid needs at least one input port (it sets the batch size)")
    for name in [*wiring.inputs, *wiring.constants]:
        if _SEP in name:
            raise GraphError(f"name {name!r} contains '__', which hybrids reserve: rename it")
    for kind, names in (("input", wiring.inputs), ("constant", wiring.constants)):
        clash = set(names) & set(wiring.parts)
        if clash:
            raise GraphError(f"{sorted(clash)} name both a {kind} and a part: rename one")
    clash = set(wiring.inputs) & set(wiring.constants)
    if clash:
        raise GraphError(f"{sorted(clash)} name both an input and a constant: rename one")


def _check_targets(wiring: Wiring) -> None:
    for target in wiring.wires:
        part, port = split_ref(target)
        if part not in wiring.parts:
            raise GraphError(f"wire into {target!r}: no part {part!r}; parts: {list(wiring.parts)}")
        if port not in wiring.parts[part].inputs:
            raise GraphError(
                f"wire into {target!r}: part {part!r} has no input port {port!r}; its inputs "
                f"are {list(wiring.parts[part].inputs)}"
            )
    for part, interface in wiring.parts.items():
        for port, spec in interface.inputs.items():
            if f"{part}.{port}" not in wiring.wires:
                raise GraphError(
                    f"input {port!r} ({spec.unit}) of part {part!r} is not connected: wire it, "
                    f"e.g. {port}='<input or part.port>' or {port}=<number in {spec.unit}>"
                )
    missing = [o for o in wiring.outputs if o not in wiring.output_wires]
    extra = [o for o in wiring.output_wires if o not in wiring.outputs]
    if missing or extra:
        raise GraphError(
            f"hybrid outputs {list(wiring.outputs)} need exactly one expression each: "
            f"missing {missing}, not declared as outputs {extra}"
        )


def _sources(wiring: Wiring) -> dict[str, _Source]:
    sources = {n: _Source(p.unit, p.shape, p.dtype, n) for n, p in wiring.inputs.items()}
    for name, constant in wiring.constants.items():
        sources[name] = _Source(constant.unit, constant.shape, None, name)
    for part, interface in wiring.parts.items():
        for port, spec in interface.outputs.items():
            sources[f"{part}{_SEP}{port}"] = _Source(
                spec.unit, spec.shape, spec.dtype, f"{part}.{port}"
            )
    return sources


def _parse(text: str, target: str, wiring: Wiring, sources: Mapping[str, _Source]) -> Any:
    for match in _REF_RE.finditer(text):
        part, port = match.groups()
        if part not in wiring.parts:
            raise GraphError(f"wire into {target!r}: {match.group()!r} names no part")
        if port not in wiring.parts[part].outputs:
            raise GraphError(
                f"wire into {target!r}: part {part!r} has no output port {port!r}; its outputs "
                f"are {list(wiring.parts[part].outputs)}"
            )
    try:
        return parse_expression(_mangle(text), list(sources))
    except InvalidExpression as exc:
        raise GraphError(f"wire into {target!r}: {_demangle(str(exc))}") from exc


def _order(wiring: Wiring, exprs: Mapping[str, Any]) -> list[str]:
    """Parts in dependency order (declaration order among independent parts)."""
    needs: dict[str, set[str]] = {part: set() for part in wiring.parts}
    for target, expr in exprs.items():
        part = split_ref(target)[0]
        needs[part] |= {s.name.split(_SEP)[0] for s in expr.free_symbols if _SEP in s.name}
    order: list[str] = []
    while len(order) < len(needs):
        ready = [p for p in needs if p not in order and needs[p] <= set(order)]
        if not ready:
            raise GraphError(f"the wiring has a cycle: {_cycle(needs, order)}: break it")
        order.append(ready[0])
    return order


def _cycle(needs: Mapping[str, set[str]], done: list[str]) -> str:
    start = next(p for p in needs if p not in done)
    path = [start]
    while True:
        nxt = next(iter(sorted(needs[path[-1]] - set(done))))
        if nxt in path:
            loop = [*path[path.index(nxt) :], nxt]
            return " -> ".join(loop)
        path.append(nxt)


def _to_base(unit: str) -> tuple[float, str]:
    """(factor, base unit) with ``value_in_base = factor * value_in_unit``."""
    quantity = unit_registry().Quantity(1.0, parse_unit(unit)).to_base_units()
    return float(quantity.magnitude), str(quantity.units)


def _factor(value: float) -> Any:
    """An exact sympy number for a conversion factor, so factors that cancel vanish."""
    return sp.Rational(repr(value))


class _Generator:
    """Emits the hybrid's forward, checking each joint as it goes."""

    def __init__(self, wiring: Wiring, sources: Mapping[str, _Source]) -> None:
        self.wiring = wiring
        self.sources = sources
        operands = {n: Operand(f"p_{n}", p.shape, batched=True) for n, p in wiring.inputs.items()}
        operands |= {n: Operand(f"self.const_{n}", c.shape) for n, c in wiring.constants.items()}
        self.printer = Printer(operands)
        self.like = f"p_{next(iter(wiring.inputs))}"

    def source(self, order: list[str], exprs: Mapping[str, Any], outs: Mapping[str, Any]) -> str:
        for index, part in enumerate(order):
            interface = self.wiring.parts[part]
            args = {
                port: self.joint(f"{part}.{port}", spec, exprs[f"{part}.{port}"])
                for port, spec in interface.inputs.items()
            }
            items = ", ".join(f"{port!r}: {code}" for port, code in args.items())
            self.printer.lines.append(f"o_{index} = self.parts[{part!r}]({{{items}}})")
            for port, spec in interface.outputs.items():
                code = f"o_{index}_{port}"
                self.printer.lines.append(f"{code} = o_{index}[{port!r}]")
                self.printer.operands[f"{part}{_SEP}{port}"] = Operand(
                    code, spec.shape, batched=True
                )
        returns = {
            name: self.joint(name, self.wiring.outputs[name], outs[name])
            for name in self.wiring.outputs
        }
        return forward_source(list(self.wiring.inputs), self.printer.lines, returns)

    def joint(self, target: str, port: Port, expr: Any) -> str:
        """Code for the value flowing into ``target``, in the target's unit, shape checked."""
        if expr.free_symbols:
            self._check_dtypes(target, port, expr)
            expr = self._in_target_unit(target, port, expr)
        try:
            operand = self.printer.output(expr, self.like)
        except InterfaceMismatch as exc:
            raise InterfaceMismatch(f"wire into {target!r}: {_demangle(str(exc))}") from exc
        if operand.shape != port.shape:
            raise InterfaceMismatch(
                f"shape mismatch at {target!r}: {_describe(expr)} has per-sample shape "
                f"{list(operand.shape)} but {target} expects {list(port.shape)}"
            )
        return operand.code

    def _check_dtypes(self, target: str, port: Port, expr: Any) -> None:
        for symbol in sorted(expr.free_symbols, key=lambda s: s.name):
            source = self.sources[symbol.name]
            if source.dtype is not None and source.dtype != port.dtype:
                raise InterfaceMismatch(
                    f"dtype mismatch at {target!r}: {source.label} is {source.dtype} but "
                    f"{target} expects {port.dtype}: make the ports' dtypes agree"
                )

    def _in_target_unit(self, target: str, port: Port, expr: Any) -> Any:
        """``expr`` rescaled so its value is in the target port's unit (dimension checked)."""
        names = sorted(expr.free_symbols, key=lambda s: s.name)
        base = {s.name: _to_base(self.sources[s.name].unit) for s in names}
        try:
            unit = expression_unit(expr, {name: unit for name, (_, unit) in base.items()})
        except DimensionError as exc:
            raise InterfaceMismatch(f"wire into {target!r}: {_demangle(str(exc))}") from exc
        if parse_unit(unit).dimensionality != parse_unit(port.unit).dimensionality:
            raise InterfaceMismatch(self._unit_message(target, port, expr, unit))
        target_factor, _ = _to_base(port.unit)
        scaled = expr.xreplace({s: _factor(base[s.name][0]) * s for s in names})
        return scaled / _factor(target_factor)

    def _unit_message(self, target: str, port: Port, expr: Any, unit: str) -> str:
        if isinstance(expr, sp.Symbol):
            source = self.sources[expr.name]
            what, shown = source.label, source.unit
        else:
            what, shown = f"expression {_describe(expr)!r}", unit
        return (
            f"cannot wire {what} ({shown}) into {target} ({port.unit}): dimensions "
            f"{describe_dimension(shown)} and {describe_dimension(port.unit)} differ"
        )


def _describe(expr: Any) -> str:
    from modreg.spec.expr import format_expression

    try:
        return _demangle(format_expression(expr))
    except InvalidExpression:
        return _demangle(str(expr))
