"""modreg's safe expression grammar: an allowlist parser that builds sympy objects directly.

Equation text comes from manifests that anyone may publish, so it is never handed to sympy's
string parsers, Python's evaluator or any code path that executes text. This module has its
own tokenizer and recursive-descent parser which accept exactly::

    expr   := term (('+' | '-') term)*
    term   := unary (('*' | '/') unary)*
    unary  := ('+' | '-') unary | power
    power  := atom ['**' unary]              # right-associative; -x**2 == -(x**2)
    atom   := NUMBER | NAME | 'pi' | FUNC '(' expr (',' expr)* ')' | '(' expr ')'

Decisions:

- Integer literals become ``sp.Integer``; literals with a point or an exponent become
  ``sp.Float`` holding exactly the IEEE double the text denotes (not a Rational), so fitted
  constants round-trip bit for bit.  Write ``1/2`` for an exact half.
- ``pi`` is the constant π.  There is no ``E``/``I``/``e`` magic: Euler's number is
  ``exp(1)``, and every name the caller declares (``E``, ``I``, ``S``, ``N``, ``beta``, ...)
  becomes its own plain real Symbol; sympy's special objects never leak in.  Only the
  functions of :data:`modreg.spec.grammar.GRAMMAR` and ``pi`` are reserved.
- Every number (literal or folded by sympy) must be a finite double; expressions that fold to
  complex, infinite or undefined values (``sqrt(-1)``, ``1/0``) are refused.
- Bounded work: at most ``MAX_LENGTH`` characters, ``MAX_NODES`` tokens, ``MAX_DEPTH`` levels
  of nesting and numeric exponents of magnitude ``MAX_EXPONENT``, all checked before sympy
  evaluates anything, so ``2**10**10`` never computes.

Example:
    >>> expr = parse_expression("G * m1 * m2 / r**2", ["G", "m1", "m2", "r"])
    >>> format_expression(expr)
    'G*m1*m2/r**2'
    >>> format_expression(parse_expression("-0.5*rho*norm(v)*v", ["rho", "v"]))
    '-0.5*rho*v*norm(v)'
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import sympy as sp
from sympy.printing.str import StrPrinter

from modreg.errors import InvalidExpression
from modreg.spec.grammar import FUNCTION_TABLE, GRAMMAR, RESERVED_NAMES

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NODES",
    "Dot",
    "Norm",
    "format_expression",
    "parse_expression",
    "sympy_builder",
]

MAX_LENGTH = 4000
MAX_NODES = 1000
MAX_DEPTH = 64
MAX_EXPONENT = 64
_MAX_NUMBER_CHARS = 400
# Numbers must be normal doubles (about 2.2e-308 to 1.8e308 in magnitude), with some margin:
# beyond, floats lose bits and would not print back exactly.
_MIN_LOG2, _MAX_LOG2 = -1020, 1022


class Norm(sp.Function):  # type: ignore[misc]
    """Euclidean norm over the last axis of a vector port, written ``norm(v)``."""

    nargs = 1

    def _eval_is_extended_real(self) -> bool:
        return True

    def _eval_is_extended_nonnegative(self) -> bool:
        return True


class Dot(sp.Function):  # type: ignore[misc]
    """Dot product over the last axis of two vector ports, written ``dot(a, b)``."""

    nargs = 2

    def _eval_is_extended_real(self) -> bool:
        return True


_OWN_CLASSES: dict[str, Any] = {"Norm": Norm, "Dot": Dot}


def sympy_builder(name: str) -> Callable[..., Any]:
    """The sympy callable that builds grammar function ``name`` (from :data:`GRAMMAR`)."""
    spelling = FUNCTION_TABLE[name].sympy
    builder: Callable[..., Any] = _OWN_CLASSES.get(spelling) or getattr(sp, spelling)
    return builder


_BUILDERS: dict[str, Callable[..., Any]] = {f.name: sympy_builder(f.name) for f in GRAMMAR}
FUNCTIONS: frozenset[str] = frozenset(_BUILDERS)
_ARITY = {f.name: f.arity for f in GRAMMAR}
# sympy class name -> grammar name, for the printer and the allowlist check of format_expression
# (sqrt has none: sympy builds it as a power).
_SYMPY_FUNCTIONS = {f.sympy: f.name for f in GRAMMAR if f.name != "sqrt"}
_GRAMMAR_HINT = "write only numbers, names, + - * / ** ( ) and the functions " + ", ".join(
    f"{name}()" for name in sorted(FUNCTIONS)
)
_NON_FINITE = (sp.zoo, sp.oo, sp.S.NegativeInfinity, sp.nan, sp.I)

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN_RE = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r"|(?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/(),])"
)
# Why a character is refused, for the ones people actually try.
_CHAR_HINTS = {
    "[": "indexing is not allowed",
    "]": "indexing is not allowed",
    "{": "sets and dicts are not allowed",
    "}": "sets and dicts are not allowed",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    ":": "lambdas, slices and ':=' are not allowed",
    "=": "assignments and comparisons are not allowed",
    "<": "comparisons are not allowed",
    ">": "comparisons are not allowed",
    "!": "comparisons are not allowed",
    ";": "write a single expression",
    "^": "use ** for powers",
    "%": "only + - * / ** are allowed",
    "@": "only + - * / ** are allowed; use dot(a, b)",
    "&": "only + - * / ** are allowed",
    "|": "only + - * / ** are allowed",
    "~": "only + - * / ** are allowed",
    "\\": "line continuations are not allowed",
    "#": "comments are not allowed",
}

TokenKind = Literal["number", "name", "op", "end"]


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    text: str
    pos: int


def _snippet(text: str, pos: int) -> str:
    """The text, or a window of it around ``pos`` when it is long."""
    if len(text) <= 60:
        return text
    start, stop = max(0, pos - 25), min(len(text), pos + 25)
    return ("..." if start else "") + text[start:stop] + ("..." if stop < len(text) else "")


def _shorten(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "..."


def _error(
    text: str, pos: int, what: str, hint: str = "", tail: str = _GRAMMAR_HINT
) -> InvalidExpression:
    """One-line InvalidExpression quoting the text around ``pos`` (0-based)."""
    because = f" ({hint})" if hint else ""
    return InvalidExpression(
        f"invalid expression {_snippet(text, pos)!r}: {what} at column {pos + 1}{because}; {tail}"
    )


def _tokenize(text: str) -> Iterator[_Token]:
    """Tokens of ``text`` in order, then an ``end`` token; raises at the first bad character."""
    pos, count = 0, 0
    previous = _Token("end", "", 0)
    while pos < len(text):
        char = text[pos]
        after_operand = previous.kind == "name" or previous.text == ")"
        match = None if char == "." and after_operand else _TOKEN_RE.match(text, pos)
        if match is None:
            hint = _CHAR_HINTS.get(char, "")
            if char == "." and after_operand:
                hint = "attribute access is not allowed"
            if text.startswith(":=", pos):
                hint = "assignment expressions are not allowed"
            raise _error(text, pos, f"unexpected {char!r}", hint)
        kind = match.lastgroup
        if kind != "space":
            count += 1
            if count > MAX_NODES:
                raise _error(text, pos, f"more than {MAX_NODES} tokens", "split the equation")
            previous = _Token(kind, match.group(), pos)  # type: ignore[arg-type]
            yield previous
        pos = match.end()
    yield _Token("end", "", len(text))


def _log2_magnitude(number: Any) -> float:
    """About log2|number| for a sympy Number (0 for zero), without converting huge ints."""
    if number.is_zero:
        return 0.0
    if number.is_Rational:
        p, q = abs(int(number.p)), int(number.q)
        return float(p.bit_length() - q.bit_length())
    value = float(number)
    return math.inf if not math.isfinite(value) or value == 0 else math.log2(abs(value))


def _is_finite_number(number: Any) -> bool:
    return number.is_Number and (number.is_zero or _MIN_LOG2 < _log2_magnitude(number) < _MAX_LOG2)


class _Parser:
    """Recursive descent with one token of lookahead; builds sympy as it goes."""

    def __init__(self, text: str, symbols: dict[str, Any]) -> None:
        self.text = text
        self.symbols = symbols
        self.tokens = _tokenize(text)
        self.token = next(self.tokens)  # one token of lookahead
        self.depth = 0

    def advance(self) -> _Token:
        token = self.token
        if token.kind != "end":
            self.token = next(self.tokens)
        return token

    def at(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def fail(
        self, token: _Token, what: str, hint: str = "", tail: str = _GRAMMAR_HINT
    ) -> InvalidExpression:
        return _error(self.text, token.pos, what, hint, tail)

    @contextmanager
    def nested(self, token: _Token) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(token, f"nesting deeper than {MAX_DEPTH} levels", "simplify it")
        try:
            yield
        finally:
            self.depth -= 1

    def checked(self, expr: Any, token: _Token) -> Any:
        """``expr`` if its numbers are finite doubles and it folds to no complex/infinite value."""
        parts = (expr, *expr.args)
        if any(part in _NON_FINITE for part in parts):
            what = "this part folds to a complex, infinite or undefined value"
            raise self.fail(token, what, "division by zero? log or root of a negative number?")
        if any(part.is_Number and not _is_finite_number(part) for part in parts):
            raise self.fail(token, "this part folds to a number outside the finite float range")
        return expr

    # grammar rules --------------------------------------------------------------------------

    def parse(self) -> Any:
        expr = self.sum()
        if self.token.kind != "end":
            raise self.unexpected(self.token)
        return expr

    def sum(self) -> Any:
        first = self.token
        terms = [self.product()]
        while self.at("+", "-"):
            sign = self.advance().text
            term = self.product()
            terms.append(term if sign == "+" else self.checked(-term, first))
        return self.checked(sp.Add(*terms), first)

    def product(self) -> Any:
        first = self.token
        factors = [self.unary()]
        while self.at("*", "/"):
            op = self.advance()
            factor = self.unary()
            factors.append(
                factor if op.text == "*" else self.power_of(factor, sp.S.NegativeOne, op)
            )
        return self.checked(sp.Mul(*factors), first)

    def unary(self) -> Any:
        if not self.at("+", "-"):
            return self.power()
        op = self.advance()
        with self.nested(op):
            operand = self.unary()
        return operand if op.text == "+" else self.checked(-operand, op)

    def power(self) -> Any:
        base = self.atom()
        if not self.at("**"):
            return base
        op = self.advance()
        with self.nested(op):
            exponent = self.unary()
        return self.power_of(base, exponent, op)

    def power_of(self, base: Any, exponent: Any, op: _Token) -> Any:
        if exponent.is_Number and abs(exponent) > MAX_EXPONENT:
            what = f"exponent {_shorten(str(exponent))} is larger than {MAX_EXPONENT} in magnitude"
            raise self.fail(op, what, "rescale")
        if base.is_Number and base.is_negative and exponent.is_Number and not exponent.is_integer:
            raise self.fail(op, "a negative number to a fractional power is complex")
        return self.checked(sp.Pow(base, exponent), op)

    def atom(self) -> Any:
        token = self.token
        if token.kind not in ("number", "name") and token.text != "(":
            raise self.unexpected(token)
        self.advance()
        if token.kind == "number":
            return self.number(token)
        if token.kind == "name":
            return self.call(token) if self.at("(") else self.name(token)
        with self.nested(token):
            expr = self.sum()
        self.expect(")", token)
        return expr

    def expect(self, op: str, opened: _Token) -> None:
        if self.at(op):
            self.advance()
            return
        if self.token.kind == "end":
            hint = f"the '(' at column {opened.pos + 1} is not closed"
            raise self.fail(self.token, f"expected {op!r}", hint)
        raise self.unexpected(self.token)

    def unexpected(self, token: _Token) -> InvalidExpression:
        if token.kind == "end":
            return self.fail(token, "unexpected end of expression", "an operand is missing")
        if token.kind == "name" and keyword.iskeyword(token.text):
            return self.bad_name(token)
        if token.kind in ("name", "number"):
            what = f"unexpected {token.kind} {_shorten(token.text)!r}"
            return self.fail(token, what, "missing operator?")
        hints = {",": "commas only separate function arguments", ")": "unmatched ')'"}
        hint = hints.get(token.text, "missing operator?" if token.text == "(" else "")
        return self.fail(token, f"unexpected {token.text!r}", hint)

    def number(self, token: _Token) -> Any:
        text = token.text
        if len(text) > _MAX_NUMBER_CHARS:
            what = f"number literal {_shorten(text)!r} is too long"
            raise self.fail(token, what, "numbers must be finite floats")
        if text.isdigit():
            number = sp.Integer(int(text))
        else:
            value = float(text)
            mantissa = text.lower().partition("e")[0]
            if value == 0 and mantissa.strip("0.") != "":
                raise self.fail(token, f"number {text} underflows to 0", "rescale")
            number = sp.Float(value)
        if not _is_finite_number(number):
            what = f"number {_shorten(text)} is outside the float range"
            raise self.fail(token, what, "use numbers between about 1e-307 and 1e307")
        return number

    def name(self, token: _Token) -> Any:
        name = token.text
        if name in self.symbols:
            return self.symbols[name]
        if name == "pi":
            return sp.pi
        if name in FUNCTIONS:
            raise self.fail(token, f"function {name!r} is not called", f"write {name}(...)")
        raise self.bad_name(token)

    def bad_name(self, token: _Token) -> InvalidExpression:
        name = token.text
        if keyword.iskeyword(name) or keyword.issoftkeyword(name):
            return self.fail(token, f"keyword {name!r}", "keywords are not allowed")
        if name.startswith("__"):
            return self.fail(token, f"name {name!r}", "dunder names are not allowed")
        available = ", ".join([*sorted(self.symbols), "pi"])
        return self.fail(
            token, f"unknown name {name!r}", tail=f"the names available here are: {available}"
        )

    def call(self, token: _Token) -> Any:
        name = token.text
        if name not in FUNCTIONS:
            if name in self.symbols or name == "pi":
                raise self.fail(token, f"{name!r} is not a function", "missing operator?")
            if keyword.iskeyword(name) or name.startswith("__"):
                raise self.bad_name(token)
            functions = ", ".join(sorted(FUNCTIONS))
            raise self.fail(
                token, f"unknown function {name!r}", tail=f"the functions are: {functions}"
            )
        opened = self.advance()
        args: list[Any] = []
        with self.nested(opened):
            while not (self.at(")") and not args):
                args.append(self.sum())
                if not self.at(","):
                    break
                self.advance()
        self.expect(")", opened)
        arity = _ARITY[name]
        if len(args) != arity:
            plural = "s" if arity > 1 else ""
            raise self.fail(token, f"{name}() takes {arity} argument{plural}, got {len(args)}")
        return self.checked(_BUILDERS[name](*args), token)


def _allowed_name(name: str) -> bool:
    return (
        _IDENTIFIER_RE.fullmatch(name) is not None
        and name not in RESERVED_NAMES
        and not name.startswith("__")
        and not keyword.iskeyword(name)
    )


def _symbols(names: Iterable[str]) -> dict[str, Any]:
    symbols = {}
    for name in names:
        if not isinstance(name, str) or not _allowed_name(name):
            raise InvalidExpression(
                f"invalid name {name!r}: use an identifier such as 'm1' that is not a keyword, "
                f"does not start with '__' and is not one of {sorted(RESERVED_NAMES)}"
            )
        symbols[name] = sp.Symbol(name, real=True)
    return symbols


def parse_expression(text: str, names: Iterable[str]) -> Any:
    """Parse equation text in modreg's safe grammar into a sympy expression.

    Args:
        text: the expression, e.g. ``"G * m1 * m2 / r**2"``.
        names: the names it may use (ports and constants); each becomes a real sympy Symbol.

    Returns:
        The sympy expression (evaluated, so ``x + x`` becomes ``2*x``).

    Raises:
        InvalidExpression: anything outside the grammar or its limits; the one-line message
            quotes the text around the offending spot.

    Example:
        >>> parse_expression("-x**2", ["x"])
        -x**2
        >>> parse_expression("x.y", ["x"])
        Traceback (most recent call last):
        ...
        modreg.errors.InvalidExpression: invalid expression 'x.y': unexpected '.' at column 2 \
(attribute access is not allowed); write only numbers, names, + - * / ** ( ) and the functions \
abs(), acos(), asin(), atan(), cos(), cosh(), dot(), exp(), log(), norm(), sin(), sinh(), \
sqrt(), tan(), tanh()
    """
    if not isinstance(text, str):
        raise InvalidExpression(f"expected expression text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise InvalidExpression(
            f"invalid expression {text[:40]!r}...: longer than {MAX_LENGTH} characters "
            f"({len(text)}); split it or simplify it"
        )
    expr = _Parser(text, _symbols(names)).parse()
    if expr.has(*_NON_FINITE) or not all(_is_finite_number(n) for n in expr.atoms(sp.Number)):
        raise InvalidExpression(
            f"invalid expression {_snippet(text, 0)!r}: it folds to a complex, infinite or "
            "out-of-range value; check divisions by zero and roots of negative numbers"
        )
    return expr


class _GrammarPrinter(StrPrinter):  # type: ignore[misc]
    """sympy's str printer, speaking modreg's grammar: norm/dot/abs, exp(1), exact floats."""

    def _print_Float(self, expr: Any) -> str:
        return repr(float(expr))

    def _print_Exp1(self, expr: Any) -> str:
        return "exp(1)"

    def _print_Function(self, expr: Any) -> str:
        name = _SYMPY_FUNCTIONS[type(expr).__name__]
        return f"{name}({', '.join(self._print(arg) for arg in expr.args)})"

    _print_Abs = _print_Function
    _print_Norm = _print_Function
    _print_Dot = _print_Function


def _check_printable(expr: Any) -> None:
    """Refuse sympy objects that have no spelling in the grammar (I, oo, Piecewise, ...)."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Symbol):
            ok = _allowed_name(node.name)
        elif node.is_Number:
            ok = _is_finite_number(node)
        elif isinstance(node, sp.Function):
            ok = type(node).__name__ in _SYMPY_FUNCTIONS
        else:
            ok = isinstance(node, (sp.Add, sp.Mul, sp.Pow)) or node in (sp.pi, sp.E)
        if not ok:
            raise InvalidExpression(
                f"cannot write {node} ({type(node).__name__}) in modreg's expression grammar"
            )


def format_expression(expr: Any) -> str:
    """Print a sympy expression back into the grammar, so that parsing it gives ``expr`` again.

    Floats print with full (repr) precision; ``Abs``/``Norm``/``Dot`` print as ``abs``/``norm``/
    ``dot`` and Euler's number as ``exp(1)``.

    Raises:
        InvalidExpression: ``expr`` holds something the grammar cannot express.

    Example:
        >>> x = sp.Symbol("x", real=True)
        >>> format_expression(sp.Abs(x) / 3 + sp.Float(0.1) + sp.E)
        'abs(x)/3 + 0.1 + exp(1)'
    """
    _check_printable(expr)
    return str(_GrammarPrinter().doprint(expr))
