"""Terms: hybrid values combined with Python operators, printed in the equation grammar.

``drag.F / m + g`` in a notebook builds the text ``"drag.F/m + g"``, which is what the hybrid
stores and what the builder parses (with the same safe parser as equations).
"""

from __future__ import annotations

from typing import Union

__all__ = ["Term", "TermLike"]

_ATOM, _POWER, _UNARY, _PRODUCT, _SUM = 5, 4, 3, 2, 1
TermLike = Union["Term", int, float]


def _as_term(value: TermLike) -> Term:
    if isinstance(value, Term):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"cannot combine a hybrid term with {type(value).__name__}: use numbers")
    text = repr(float(value)) if isinstance(value, float) else str(value)
    return Term(text, _ATOM if value >= 0 else _UNARY)


class Term:
    """A value of a hybrid (input, constant, ``part.port``) or an arithmetic combination."""

    __slots__ = ("precedence", "text")

    def __init__(self, text: str, precedence: int = _ATOM) -> None:
        self.text = text
        self.precedence = precedence

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Term({self.text!r})"

    def _wrap(self, least: int) -> str:
        return self.text if self.precedence >= least else f"({self.text})"

    def _binary(self, other: TermLike, op: str, precedence: int, *, right: bool = False) -> Term:
        a, b = (_as_term(other), self) if right else (self, _as_term(other))
        # Left-associative operators need a strictly tighter right operand: a - (b - c).
        left = a._wrap(precedence + 1 if op == "**" else precedence)
        tight = precedence + (1 if op in ("-", "/") else 0)
        joiner = f" {op} " if precedence == _SUM else op
        return Term(f"{left}{joiner}{b._wrap(tight)}", precedence)

    def __add__(self, other: TermLike) -> Term:
        return self._binary(other, "+", _SUM)

    def __radd__(self, other: TermLike) -> Term:
        return self._binary(other, "+", _SUM, right=True)

    def __sub__(self, other: TermLike) -> Term:
        return self._binary(other, "-", _SUM)

    def __rsub__(self, other: TermLike) -> Term:
        return self._binary(other, "-", _SUM, right=True)

    def __mul__(self, other: TermLike) -> Term:
        return self._binary(other, "*", _PRODUCT)

    def __rmul__(self, other: TermLike) -> Term:
        return self._binary(other, "*", _PRODUCT, right=True)

    def __truediv__(self, other: TermLike) -> Term:
        return self._binary(other, "/", _PRODUCT)

    def __rtruediv__(self, other: TermLike) -> Term:
        return self._binary(other, "/", _PRODUCT, right=True)

    def __pow__(self, other: TermLike) -> Term:
        return self._binary(other, "**", _POWER)

    def __neg__(self) -> Term:
        return Term(f"-{self._wrap(_POWER)}", _UNARY)
