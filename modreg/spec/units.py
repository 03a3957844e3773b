"""Physical units via pint: parsing, dimensions, and conversion factors.

One pint registry serves the whole process; it is built lazily on first use (pint's registry
is costly to construct, and ``modreg --help`` must stay instant).

pint evaluates a unit string as arithmetic, with Python's unbounded integers: ``m*9**9**9``
would run until killed. So every unit string passes :func:`check_unit_text` first, which
bounds it as the expression grammar is bounded (``MAX_UNIT_CHARS`` characters,
``MAX_UNIT_TOKENS`` tokens, ``MAX_UNIT_NESTING`` levels of parentheses, exponents that are
plain numbers or fractions of integers, ``m**(4/3)``, of magnitude at most
``MAX_UNIT_EXPONENT``, one exponent per factor) and refuses
division by zero, all before pint sees it.

Example:
    >>> conversion_factor("km", "m")
    1000.0
    >>> same_dimension("N", "kg*m/s**2")
    True
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING, Any, cast

from modreg.errors import InvalidUnit

if TYPE_CHECKING:
    import pint

__all__ = [
    "DIMENSIONLESS",
    "MAX_UNIT_CHARS",
    "MAX_UNIT_EXPONENT",
    "MAX_UNIT_NESTING",
    "MAX_UNIT_TOKENS",
    "check_unit_text",
    "conversion_factor",
    "dimensionality",
    "parse_unit",
    "same_dimension",
    "unit_registry",
]

DIMENSIONLESS = "dimensionless"
MAX_UNIT_CHARS = 80
MAX_UNIT_TOKENS = 40
MAX_UNIT_NESTING = 4
MAX_UNIT_EXPONENT = 64
# Unit strings are short physics notation; anything else is refused before pint sees it.
_UNIT_TEXT_RE = re.compile(r"[A-Za-z0-9_ .*/()\-^]+")
_TOKEN_RE = re.compile(r"\s*(?:(\*\*|\^)|([A-Za-z_][A-Za-z0-9_]*)|(\d+(?:\.\d+)?)|(.))")
_FIX = "write a pint unit such as 'm/s**2', 'kg' or 'dimensionless'"


def _tokens(text: str) -> list[tuple[str, str]]:
    """``(kind, token)`` pairs: kind is ``pow``, ``name``, ``number`` or the character itself."""
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN_RE.finditer(text):
        power, name, number, other = match.groups()
        if power:
            tokens.append(("pow", power))
        elif name:
            tokens.append(("name", name))
        elif number:
            tokens.append(("number", number))
        elif other is not None and not other.isspace():
            tokens.append((other, other))
    return tokens


def check_unit_text(text: object) -> str:
    """Refuse a unit string whose evaluation by pint would not be small and bounded.

    Returns:
        ``text``, unchanged.

    Raises:
        InvalidUnit: not a short string of unit notation, too many tokens or levels of
            parentheses, an exponent that is not a plain number within ``±MAX_UNIT_EXPONENT``,
            an exponent of an exponent (``9**9**9``), a number glued to a name (``1e400``),
            or a division by zero.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidUnit(f"invalid unit {text!r}: {_FIX}")
    if len(text) > MAX_UNIT_CHARS:
        raise InvalidUnit(
            f"unit {text[:20]!r}... is {len(text)} characters, more than {MAX_UNIT_CHARS}: {_FIX}"
        )
    if not _UNIT_TEXT_RE.fullmatch(text):
        raise InvalidUnit(f"invalid unit {text!r}: {_FIX}")
    tokens = _tokens(text)
    if len(tokens) > MAX_UNIT_TOKENS:
        raise InvalidUnit(f"unit {text!r} has {len(tokens)} tokens, more than {MAX_UNIT_TOKENS}")
    # Per open group, the largest power any factor inside it is raised to so far.
    groups = [1.0]
    for index, (kind, token) in enumerate(tokens):
        after = tokens[index + 1 :]
        if kind == "number" and (len(token) > 24 or (after and after[0][0] == "name")):
            raise InvalidUnit(
                f"unit {text!r}: number {token!r} is not an exponent; write exponents as "
                "'m**2' (units carry no numbers)"
            )
        if kind == "/" and after and after[0][0] == "number" and float(after[0][1]) == 0:
            raise InvalidUnit(f"unit {text!r} divides by zero: {_FIX}")
        if kind == "(":
            groups.append(1.0)
            if len(groups) > MAX_UNIT_NESTING + 1:
                raise InvalidUnit(
                    f"unit {text!r} nests parentheses deeper than {MAX_UNIT_NESTING} levels"
                )
        elif kind == ")":
            if len(groups) == 1:
                raise InvalidUnit(f"unit {text!r} has an unmatched ')': {_FIX}")
            inner = groups.pop()
            power = _exponent(text, after) if after[:1] and after[0][0] == "pow" else 1.0
            _raise_power(text, groups, inner * power)
        elif kind in ("name", "number"):
            power = _exponent(text, after) if after[:1] and after[0][0] == "pow" else 1.0
            _raise_power(text, groups, power)
        elif kind in ("pow", "*", "/") and not _between_operands(tokens, index):
            raise InvalidUnit(f"unit {text!r}: '{token}' needs a unit on each side: {_FIX}")
    if len(groups) > 1:
        raise InvalidUnit(f"unit {text!r} has an unclosed '(': {_FIX}")
    return text


def _between_operands(tokens: list[tuple[str, str]], index: int) -> bool:
    """Whether the operator at ``index`` has an operand before and after it."""
    before = index > 0 and tokens[index - 1][0] in ("name", "number", ")")
    after = index + 1 < len(tokens) and tokens[index + 1][0] in ("name", "number", "(", "-")
    return before and after


def _raise_power(text: str, groups: list[float], power: float) -> None:
    if power > MAX_UNIT_EXPONENT:
        raise InvalidUnit(
            f"unit {text!r} raises a factor to a power of {power:g}, beyond "
            f"±{MAX_UNIT_EXPONENT}: {_FIX}"
        )
    groups[-1] = max(groups[-1], power)


def _fraction(after: list[tuple[str, str]]) -> tuple[float, int] | None:
    """``(p/q)`` or ``(-p/q)`` after ``**``, integers with 0 < q <= ``MAX_UNIT_EXPONENT``: its
    value and how many tokens it spans after the ``**``; None when it is not that form."""
    sign = 1 if after[2:3] and after[2][0] == "-" else 0
    shape = [kind for kind, _ in after[1 : 6 + sign]]
    if shape != ["("] + ["-"] * sign + ["number", "/", "number", ")"]:
        return None
    top, bottom = after[2 + sign][1], after[4 + sign][1]
    if "." in top or "." in bottom or not 0 < int(bottom) <= MAX_UNIT_EXPONENT:
        return None
    return int(top) / int(bottom), 6 + sign


def _exponent(text: str, after: list[tuple[str, str]]) -> float:
    """The magnitude of the exponent in ``after`` (``**``, then ``[-]NUMBER`` or a fraction
    ``([-]p/q)`` of integers), not raised again."""
    fraction = _fraction(after)
    if fraction is not None:
        ratio, span = fraction
        if after[span : span + 1] and after[span][0] == "pow":
            raise InvalidUnit(
                f"unit {text!r} raises an exponent to a power: one exponent per factor, "
                "e.g. 'm**(4/3)'"
            )
        if abs(ratio) > MAX_UNIT_EXPONENT:
            raise InvalidUnit(f"unit {text!r} has exponent {ratio:g}, beyond ±{MAX_UNIT_EXPONENT}")
        return max(abs(ratio), 1.0)
    sign = 2 if after[1:2] and after[1][0] == "-" else 1
    if len(after) <= sign or after[sign][0] != "number":
        raise InvalidUnit(
            f"unit {text!r}: an exponent must be a plain number such as 2, -1 or 0.5, or a "
            "fraction of integers such as (4/3) (no names or other expressions after '**')"
        )
    value = after[sign][1]
    if len(after) > sign + 1 and after[sign + 1][0] == "pow":
        raise InvalidUnit(
            f"unit {text!r} raises an exponent to a power ({value}**...): one exponent per "
            "factor, e.g. 'm**2'"
        )
    magnitude = float(value)
    if magnitude > MAX_UNIT_EXPONENT:
        raise InvalidUnit(
            f"unit {text!r} has exponent {value}, beyond ±{MAX_UNIT_EXPONENT}: {_FIX}"
        )
    return max(magnitude, 1.0)


@functools.cache
def unit_registry() -> pint.UnitRegistry[Any]:
    """The process-wide pint registry (built on first use)."""
    import pint

    # The definition cache (in the user cache dir) halves the registry's build time.
    try:
        return pint.UnitRegistry(autoconvert_offset_to_baseunit=True, cache_folder=":auto:")
    except OSError:  # a read-only home: build without the cache
        return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


@functools.lru_cache(maxsize=4096)
def parse_unit(text: str) -> pint.Unit:
    """Parse a unit string (``m/s**2``, ``kg``, ``dimensionless``) into a pint unit.

    Raises:
        InvalidUnit: the text is out of bounds (:func:`check_unit_text`) or not a unit pint
            knows.
    """
    check_unit_text(text)  # before pint is even imported: a refusal costs microseconds
    import pint

    registry = unit_registry()
    errors = (pint.errors.PintError, AttributeError, SyntaxError, TypeError, ValueError)
    try:
        quantity = registry.parse_expression(text)
    except (*errors, ArithmeticError, AssertionError, LookupError) as exc:  # pint's own asserts
        raise InvalidUnit(f"unknown unit {text!r}: {_FIX}") from exc
    if not isinstance(quantity, registry.Quantity):
        return registry.dimensionless
    if quantity.magnitude != 1:
        raise InvalidUnit(
            f"unit {text!r} carries a number ({quantity.magnitude}): put numbers in the equation "
            "or a constant, not in the unit"
        )
    return cast("pint.Unit", quantity.units)


def dimensionality(text: str) -> dict[str, float]:
    """The unit's dimension as base-dimension exponents, e.g. ``{'[length]': 1, '[time]': -2}``."""
    return {str(k): float(cast(float, v)) for k, v in parse_unit(text).dimensionality.items()}


def same_dimension(a: str, b: str) -> bool:
    """Whether two unit strings measure the same physical dimension."""
    return parse_unit(a).dimensionality == parse_unit(b).dimensionality


def conversion_factor(source: str, target: str) -> float:
    """The factor ``k`` with ``value_in_target = k * value_in_source``.

    Raises:
        InvalidUnit: the two units have different dimensions.
    """
    if not same_dimension(source, target):
        raise InvalidUnit(
            f"cannot convert {source!r} to {target!r}: dimensions "
            f"{describe_dimension(source)} and {describe_dimension(target)} differ"
        )
    registry = unit_registry()
    factor = float(registry.Quantity(1.0, parse_unit(source)).to(parse_unit(target)).magnitude)
    return 1.0 if math.isclose(factor, 1.0, rel_tol=1e-12) else factor


def describe_dimension(text: str) -> str:
    """A short human form of a unit's dimension, e.g. ``[length] * [mass] / [time] ** 2``."""
    dims = parse_unit(text).dimensionality
    return str(dims) if dims else "dimensionless"
