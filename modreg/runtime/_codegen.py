"""Equation -> torch: a printer from validated sympy trees to Python source, compiled once.

Why source code rather than a tree of small ``nn.Module`` ops: the generated ``forward`` is the
function a person would write by hand (one line per operation, no per-node module call), so a
built equation runs at hand-written speed, reads as plain torch in ``module.source``, and is
accepted as is by ``torch.jit.script`` and ``torch.export``.

Why the ``exec`` below is safe:

1. Its input is never stored text. Equation text is parsed by modreg's allowlist parser
   (:func:`modreg.spec.expr.parse_expression`) into a sympy tree; this printer walks that tree
   and knows only ``Add``, ``Mul``, ``Pow``, numbers, symbols and the grammar's functions.
   Anything else raises :class:`~modreg.errors.InvalidExpression`.
2. The printer emits only: float literals (``repr`` of finite floats), identifiers built from
   validated names with fixed prefixes, string literals of validated port names, and calls
   from a fixed table of torch functions.
3. Before compiling, :func:`verify_source` re-parses the generated source with :mod:`ast` and
   refuses any node, name or attribute outside an allowlist (no imports, no dunder or private
   attributes, no calls except allowlisted torch functions and tensor methods). So even a bug
   in the printer cannot produce code that does anything but tensor arithmetic.
4. The code runs in a namespace holding only ``torch``, typing names and the input check.

Shapes: every port value is batched, ``(batch, *shape)``; constants are unbatched. The printer
tracks each subexpression's per-sample shape and whether it is batched, and unsqueezes a
batched scalar where it meets a vector, so ``rho * v`` is ``rho.unsqueeze(-1) * v``.
"""

from __future__ import annotations

import ast
import itertools
import linecache
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from modreg.errors import InterfaceMismatch, InvalidExpression
from modreg.spec.expr import Dot, Norm, format_expression, sympy_builder
from modreg.spec.grammar import GRAMMAR

__all__ = ["Operand", "Printer", "compile_forward", "verify_source"]

# One-argument functions printed as one torch call, from the grammar table.
_ELEMENTWISE: dict[Any, str] = {sympy_builder(f.name): f.torch for f in GRAMMAR if f.elementwise}
# ... of which these take their argument in units of pi (torch.sinc is the normalised one).
_PER_PI = frozenset(sympy_builder(f.name) for f in GRAMMAR if f.elementwise and f.per_pi)
_TORCH_CALLS = frozenset(
    {name.removeprefix("torch.") for name in _ELEMENTWISE.values()}
    | {"sqrt", "rsqrt", "reciprocal", "pow", "sum", "full", "linalg.vector_norm"}
)
_TENSOR_METHODS = frozenset({"unsqueeze", "expand", "contiguous", "shape", "dtype", "device"})
_GLOBAL_NAMES = frozenset(
    {"torch", "self", "inputs", "Dict", "List", "Tensor", "str", "check_inputs"}
)
_LOCAL_RE = re.compile(r"(?:[pto]_[A-Za-z0-9_]+|t[0-9]+|batch|like)")
_SELF_ATTR_RE = re.compile(
    r"(?:const_[A-Za-z0-9_]+|parts|check_inputs|input_names|input_shapes|label)"
)
_KEYWORDS = frozenset({"dim", "dtype", "device"})
_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Assign, ast.Return, ast.If, ast.Expr,
    ast.BinOp, ast.UnaryOp, ast.Call, ast.keyword, ast.Attribute, ast.Name, ast.Constant,
    ast.Dict, ast.List, ast.Tuple, ast.Subscript, ast.Load, ast.Store, ast.Add, ast.Sub,
    ast.Mult, ast.Div, ast.Pow, ast.USub,
)  # fmt: skip
_counter = itertools.count()


@dataclass(frozen=True)
class Operand:
    """A printed subexpression: its code, per-sample shape, and whether it is batched."""

    code: str
    shape: tuple[int, ...] = ()
    batched: bool = False
    number: float | None = None

    def aligned(self, shape: tuple[int, ...]) -> str:
        """Code for this operand broadcast against a value of per-sample ``shape``."""
        if self.batched and shape and not self.shape:
            return f"{self.code}.unsqueeze(-1)"
        return self.code


def _literal(value: float) -> str:
    if not math.isfinite(value):
        raise InvalidExpression(f"the expression folds to {value}: it must stay finite")
    text = repr(float(value))
    return f"({text})" if value < 0 else text


def fold(expr: Any) -> float:
    """The float value of a symbol-free sympy expression (exact numbers folded once)."""
    value = sp.N(expr, 30)
    if not value.is_Number:
        raise InvalidExpression(
            f"cannot fold {format_expression(expr)} to a number: simplify the expression"
        )
    result = float(value)
    if not math.isfinite(result):
        raise InvalidExpression(f"{format_expression(expr)} folds to {result}: keep it finite")
    return result


class Printer:
    """Prints sympy expressions as torch code lines, one temporary per operation."""

    def __init__(self, operands: Mapping[str, Operand]) -> None:
        self.operands = dict(operands)
        self.lines: list[str] = []
        self._cache: dict[Any, Operand] = {}
        self._temps = itertools.count()

    def value(self, expr: Any) -> Operand:
        """The operand computing ``expr``, emitting the lines it needs."""
        cached = self._cache.get(expr)
        if cached is None:
            cached = self._cache[expr] = self._print(expr)
        return cached

    def output(self, expr: Any, like: str) -> Operand:
        """Like :meth:`value`, but always batched: constant results are broadcast to ``like``."""
        operand = self.value(expr)
        if operand.batched:
            return operand
        size = ", ".join(["batch", *(str(n) for n in operand.shape)])
        if operand.number is not None:
            code = f"torch.full([{size}], {operand.code}, dtype={like}.dtype, device={like}.device)"
        else:
            code = f"{operand.code}.expand([{size}]).contiguous()"
        return self._emit(code, operand.shape, batched=True)

    def _emit(self, code: str, shape: tuple[int, ...], *, batched: bool) -> Operand:
        name = f"t{next(self._temps)}"
        self.lines.append(f"{name} = {code}")
        return Operand(name, shape, batched)

    def _print(self, expr: Any) -> Operand:
        if not expr.free_symbols:
            value = fold(expr)
            return Operand(_literal(value), number=value)
        if isinstance(expr, sp.Symbol):
            return self.operands[expr.name]
        if isinstance(expr, sp.Add):
            return self._add(expr)
        if isinstance(expr, sp.Mul):
            return self._mul(expr)
        if isinstance(expr, sp.Pow):
            return self._pow(expr)
        if isinstance(expr, Norm):
            return self._norm(expr)
        if isinstance(expr, Dot):
            return self._dot(expr)
        if type(expr) in _ELEMENTWISE:
            arg = self.value(expr.args[0])
            inner = f"{arg.code} / {_literal(math.pi)}" if type(expr) in _PER_PI else arg.code
            return self._emit(
                f"{_ELEMENTWISE[type(expr)]}({inner})", arg.shape, batched=arg.batched
            )
        raise InvalidExpression(
            f"cannot compile {type(expr).__name__} ({expr}) to torch: it is outside the grammar"
        )

    def _shape(self, operands: list[Operand], expr: Any) -> tuple[int, ...]:
        shapes = {op.shape for op in operands if op.shape}
        if len(shapes) > 1:
            listed = " and ".join(str(list(s)) for s in sorted(shapes))
            raise InterfaceMismatch(
                f"shapes {listed} do not combine in {format_expression(expr)}: "
                "elementwise operations need equal shapes (a scalar broadcasts)"
            )
        return shapes.pop() if shapes else ()

    def _add(self, expr: Any) -> Operand:
        pieces: list[tuple[str, Operand]] = []
        operands: list[Operand] = []
        for term in _ordered(expr.args):
            coeff, _ = term.as_coeff_Mul()
            negative = coeff.is_Number and coeff < 0
            operand = self.value(-term if negative else term)
            operands.append(operand)
            pieces.append(("-" if negative else "+", operand))
        shape = self._shape(operands, expr)
        first_sign, first = pieces[0]
        code = ("-" if first_sign == "-" else "") + first.aligned(shape)
        for sign, operand in pieces[1:]:
            code += f" {sign} {operand.aligned(shape)}"
        return self._emit(code, shape, batched=any(op.batched for op in operands))

    def _mul(self, expr: Any) -> Operand:
        numbers = [f for f in expr.args if not f.free_symbols]
        coeff = fold(sp.Mul(*numbers)) if numbers else 1.0
        top: list[Operand] = []
        bottom: list[Operand] = []
        for factor in expr.args:
            if not factor.free_symbols:
                continue
            if isinstance(factor, sp.Pow) and factor.exp.is_number and factor.exp.is_negative:
                bottom.append(self.value(sp.Pow(factor.base, -factor.exp)))
            else:
                top.append(self.value(factor))
        shape = self._shape(top + bottom, expr)
        batched = any(op.batched for op in top + bottom)
        scalar_top = [o for o in top if not o.shape]
        scalar_bottom = [o for o in bottom if not o.shape]
        if shape and any(o.batched for o in scalar_top + scalar_bottom):
            # a batched scalar meets a vector: combine the scalars, then unsqueeze once
            lead = f"({_product(coeff, scalar_top, scalar_bottom)}).unsqueeze(-1)"
            code = _product(
                1.0, [Operand(lead), *(o for o in top if o.shape)], [o for o in bottom if o.shape]
            )
        else:
            code = _product(coeff, top, bottom)
        return self._emit(code, shape, batched=batched)

    def _pow(self, expr: Any) -> Operand:
        base_expr, exponent = expr.args
        base = self.value(base_expr)
        if exponent.is_number:
            return self._emit(_power_code(base.code, exponent), base.shape, batched=base.batched)
        power = self.value(exponent)
        shape = self._shape([base, power], expr)
        batched = base.batched or power.batched
        if base.number is not None:
            return self._emit(f"{base.code} ** {power.code}", shape, batched=batched)
        code = f"torch.pow({base.aligned(shape)}, {power.aligned(shape)})"
        return self._emit(code, shape, batched=batched)

    def _norm(self, expr: Any) -> Operand:
        arg = self.value(expr.args[0])
        if not arg.shape:
            return self._emit(f"torch.abs({arg.code})", (), batched=arg.batched)
        return self._emit(f"torch.linalg.vector_norm({arg.code}, dim=-1)", (), batched=arg.batched)

    def _dot(self, expr: Any) -> Operand:
        left, right = (self.value(arg) for arg in expr.args)
        if not left.shape or left.shape != right.shape:
            raise InterfaceMismatch(
                f"dot() needs two vectors of equal length in {format_expression(expr)}, got "
                f"shapes {list(left.shape)} and {list(right.shape)}"
            )
        code = f"torch.sum({left.code} * {right.code}, dim=-1)"
        return self._emit(code, (), batched=left.batched or right.batched)


def _ordered(args: tuple[Any, ...]) -> list[Any]:
    """Terms with a positive leading coefficient first, so a sum rarely starts with '-'."""
    return sorted(args, key=lambda t: bool(t.as_coeff_Mul()[0] < 0))


def _product(coeff: float, top: list[Operand], bottom: list[Operand]) -> str:
    """``c * a * b / (d * e)``: unbatched (0-dim) scalars, then batched ones, then vectors."""
    ordered = sorted(top, key=lambda o: (bool(o.shape), o.batched))
    codes = ([_literal(coeff)] if coeff != 1.0 or not ordered else []) + [o.code for o in ordered]
    code = " * ".join(codes)
    if bottom:
        ordered = sorted(bottom, key=lambda o: (bool(o.shape), o.batched))
        code += f" / ({' * '.join(o.code for o in ordered)})"
    return code


def _power_code(base: str, exponent: Any) -> str:
    if exponent == sp.S.Half:
        return f"torch.sqrt({base})"
    if exponent == -sp.S.Half:
        return f"torch.rsqrt({base})"
    if exponent == -1:
        return f"torch.reciprocal({base})"
    if exponent.is_Integer and exponent > 0:
        return f"{base} ** {int(exponent)}"
    if exponent.is_Integer:
        return f"torch.reciprocal({base} ** {-int(exponent)})"
    return f"{base} ** {_literal(fold(exponent))}"


def verify_source(source: str) -> None:
    """Refuse generated source that does anything but allowlisted tensor arithmetic.

    Raises:
        InvalidExpression: a node, name, attribute or call outside the allowlist (a printer
            bug; stored text can never reach this point unparsed).
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        problem = _node_problem(node)
        if problem:
            raise InvalidExpression(f"generated code refused ({problem}): please report this bug")


def _node_problem(node: ast.AST) -> str | None:
    if not isinstance(node, _NODES):
        return f"node {type(node).__name__}"
    if (
        isinstance(node, ast.Name)
        and node.id not in _GLOBAL_NAMES
        and not _LOCAL_RE.fullmatch(node.id)
    ):
        return f"name {node.id!r}"
    if isinstance(node, ast.Attribute):
        return _attribute_problem(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return None if node.func.id == "check_inputs" else f"call {node.func.id!r}"
    if isinstance(node, ast.keyword) and node.arg not in _KEYWORDS:
        return f"keyword {node.arg!r}"
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool)):
        return f"constant {node.value!r}"
    return None


def _attribute_problem(node: ast.Attribute) -> str | None:
    """Each attribute node on its own: ``torch.<allowed>``, ``self.<allowed>``, a tensor method."""
    chain = _dotted(node)
    if chain is not None and chain.startswith("torch."):
        return None if chain.removeprefix("torch.") in _TORCH_CALLS | {"linalg"} else chain
    if isinstance(node.value, ast.Name) and node.value.id == "self":
        return None if _SELF_ATTR_RE.fullmatch(node.attr) else f"self.{node.attr}"
    return None if node.attr in _TENSOR_METHODS else f"attribute {node.attr!r}"


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def compile_forward(source: str, namespace: Mapping[str, Any], label: str) -> Callable[..., Any]:
    """Verify and compile generated ``def forward`` source; return the function.

    The source is registered with :mod:`linecache` under a unique pseudo file name, as
    ``torch.fx`` does, so tracebacks show it and ``torch.jit.script`` can read it back.
    """
    verify_source(source)
    filename = f"<modreg-generated-{next(_counter)}:{label}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    scope: dict[str, Any] = dict(namespace)
    exec(compile(source, filename, "exec"), scope)  # noqa: S102 - verified generated code only
    forward: Callable[..., Any] = scope["forward"]
    return forward
