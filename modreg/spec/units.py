"""Physical units via pint: parsing, dimensions, and conversion factors.

One pint registry serves the whole process; it is built lazily on first use (pint's registry
is costly to construct, and ``modreg --help`` must stay instant).

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
    "conversion_factor",
    "dimensionality",
    "parse_unit",
    "same_dimension",
    "unit_registry",
]

DIMENSIONLESS = "dimensionless"
# Unit strings are short physics notation; anything else is refused before pint sees it.
_UNIT_TEXT_RE = re.compile(r"[A-Za-z0-9_ .*/()\-^]{1,80}")


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
        InvalidUnit: the text is not a unit pint knows.
    """
    import pint

    if not isinstance(text, str) or not _UNIT_TEXT_RE.fullmatch(text):
        raise InvalidUnit(
            f"invalid unit {text!r}: write a pint unit such as 'm/s**2', 'kg' or 'dimensionless'"
        )
    registry = unit_registry()
    try:
        quantity = registry.parse_expression(text)
    except (pint.errors.PintError, AttributeError, SyntaxError, TypeError, ValueError) as exc:
        raise InvalidUnit(
            f"unknown unit {text!r}: write a pint unit such as 'm/s**2', 'kg' or 'dimensionless'"
        ) from exc
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
