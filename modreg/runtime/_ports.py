"""Port shorthands for code: ``"m/s"``, ``{"unit": "m/s", "shape": [3]}`` or a :class:`Port`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from modreg.errors import InvalidManifest
from modreg.spec.manifest import Port

__all__ = ["PortLike", "as_port", "as_ports"]

PortLike = Port | str | Mapping[str, Any]
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def as_port(value: PortLike, *, where: str = "port") -> Port:
    """A :class:`Port` from a port, a unit string, or a mapping of port fields.

    Raises:
        InvalidManifest: the value is none of these, or its fields do not validate.
    """
    if isinstance(value, Port):
        return value
    data: Any = {"unit": value} if isinstance(value, str) else value
    if not isinstance(data, Mapping):
        raise InvalidManifest(
            f"{where}: expected a Port, a unit string or a mapping, got {type(value).__name__}"
        )
    try:
        return Port.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        cause = first.get("ctx", {}).get("error")
        message = str(cause) if isinstance(cause, Exception) else first["msg"]
        raise InvalidManifest(f"{where}: {message}") from exc


def as_ports(ports: Mapping[str, PortLike], *, what: str) -> dict[str, Port]:
    """Validate a mapping of port names to port shorthands (names are identifiers)."""
    result: dict[str, Port] = {}
    for name, value in ports.items():
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name.startswith("__"):
            raise InvalidManifest(f"invalid {what} port name {name!r}: use an identifier like 'v'")
        result[name] = as_port(value, where=f"{what} port {name!r}")
    return result
