"""Reference data for accuracy checks: reading CSV/Parquet into port arrays, and range sampling.

Column convention (README, "Reference data"): a scalar port ``rho`` is the column ``rho``; a
vector port ``v`` of shape ``[3]`` is the columns ``v[0]``, ``v[1]``, ``v[2]`` (shape
``[2, 2]``: ``x[0,0]``, ``x[0,1]``, ...), or, in Parquet, one list column ``v``. Brackets are
not allowed in port names, so ``v[0]`` can never collide with a port of its own.

CSV is read by the bounded standard-library reader of :mod:`modreg._csv` (no pandas needed);
Parquet needs the ``[pipeline]`` extra (pandas, pyarrow).

Values are in the port's unit unless the data declares another: through the check's
``units:`` mapping (``--unit v=km/h``) or, in Parquet, a field metadata key ``unit``. A
declared unit of the same dimension is converted; another dimension is refused.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modreg.errors import ConfigError, InputError, InterfaceMismatch
from modreg.spec.manifest import Port
from modreg.spec.units import conversion_factor, parse_unit, same_dimension

__all__ = ["column_names", "load_reference", "sample_ranges"]

Arrays = dict[str, np.ndarray[Any, Any]]
_CSV = {".csv"}
_PARQUET = {".parquet", ".pq"}


@dataclass(frozen=True)
class _Data:
    """A table's columns (CSV: float arrays; Parquet: pandas columns, lists kept as cells)."""

    columns: Mapping[str, Any]
    rows: int
    units: dict[str, str]  # per-column units the file declares (Parquet field metadata)
    lines: np.ndarray[Any, Any] | None = None  # each row's line in the file (CSV)


def column_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """The columns holding port ``name``: ``['rho']`` or ``['v[0]', 'v[1]', 'v[2]']``."""
    if not shape:
        return [name]
    return [
        f"{name}[{','.join(map(str, index))}]" for index in itertools.product(*map(range, shape))
    ]


def _read_data(path: Path, source: str) -> _Data:
    """The table (bounded: see :mod:`modreg._csv`); Parquet needs the pipeline extra."""
    from modreg._csv import read_csv

    if not path.is_file():
        raise ConfigError(
            f"reference data {str(path)!r} does not exist: run 'dvc pull' or fix the path"
        )
    suffix = path.suffix.lower()
    if suffix in _CSV:
        table = read_csv(path, source)
        return _Data(table.columns, table.rows, {}, table.lines)
    if suffix in _PARQUET:
        return _read_parquet(path, source)
    raise ConfigError(
        f"reference data {str(path)!r} is neither .csv nor .parquet: convert it to one of them"
    )


def _read_parquet(path: Path, source: str) -> _Data:
    from modreg._csv import MAX_COLUMNS, check_size
    from modreg._extras import needs_extra

    with needs_extra("pipeline", f"reading Parquet ({source})", instead="give a CSV"):
        import pandas as pd
        import pyarrow.parquet as pq
    check_size(path, source)
    try:
        schema = pq.read_schema(path)
        if len(schema) > MAX_COLUMNS:
            raise InputError(
                f"{source} has {len(schema):,} columns, more than {MAX_COLUMNS}: keep the "
                "columns the ports need"
            )
        units = {
            field.name: field.metadata[b"unit"].decode()
            for field in schema
            if field.metadata and b"unit" in field.metadata
        }
        frame = pd.read_parquet(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {source}: {' '.join(str(exc).split())[:200]}") from exc
    columns = {str(name): frame[name] for name in frame.columns}
    return _Data(columns, len(frame), units)


def _port_values(data: _Data, name: str, port: Port, source: str) -> np.ndarray[Any, Any]:
    """The port's values, shape ``(rows, *port.shape)``, as float64."""
    if port.shape and name in data.columns:  # a Parquet list column
        try:
            values = np.stack([np.asarray(cell, dtype=np.float64) for cell in data.columns[name]])
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: column {name!r} is not a list of numbers") from exc
        if values.shape[1:] != port.shape:
            raise InterfaceMismatch(
                f"{source}: column {name!r} holds shape {list(values.shape[1:])} per row; "
                f"port {name!r} has shape {list(port.shape)}"
            )
        return values
    columns = column_names(name, port.shape)
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise InterfaceMismatch(
            f"{source} has no column for port {name!r} ({port.unit}, shape {list(port.shape)}): "
            f"missing {missing[:4]}; its columns are {list(data.columns)[:12]}"
        )
    try:
        values = np.column_stack([np.asarray(data.columns[c], dtype=np.float64) for c in columns])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: columns {columns[:4]} are not all numeric") from exc
    shaped: np.ndarray[Any, Any] = values.reshape((data.rows, *port.shape))
    return shaped


def _check_finite(
    values: np.ndarray[Any, Any], name: str, port: Port, data: _Data, source: str
) -> None:
    bad = ~np.isfinite(values.reshape(len(values), -1))
    rows = bad.any(axis=1)
    if rows.any():
        first = int(np.argmax(rows))
        line = f", line {int(data.lines[first])}" if data.lines is not None else ""
        where = f"row {first}{line}"
        columns = [name] if name in data.columns else column_names(name, port.shape)
        column = columns[int(np.argmax(bad[first]))] if len(columns) > 1 else columns[0]
        raise InputError(
            f"{source}: port {name!r} holds NaN or Inf in {int(rows.sum())} row(s) "
            f"(first at {where}, column {column!r}): clean the data or drop those rows"
        )


def _check_declared(units: Mapping[str, str], ports: Mapping[str, Port]) -> None:
    """Declared units must name ports and parse, before any data is read."""
    unknown = sorted(set(units) - set(ports))
    if unknown:
        raise ConfigError(
            f"a unit is declared for {unknown[0]!r}, which is not a port here; the ports are "
            f"{list(ports)}: fix the PORT in --unit PORT=UNIT (or the check's 'units:')"
        )
    for unit in units.values():
        parse_unit(unit)


def _to_port_unit(
    values: np.ndarray[Any, Any], name: str, port: Port, declared: str | None, source: str
) -> np.ndarray[Any, Any]:
    if declared is None or declared == port.unit:
        return values
    if not same_dimension(declared, port.unit):
        raise InterfaceMismatch(
            f"{source}: column(s) of port {name!r} are declared in {declared} but the port is in "
            f"{port.unit}: the dimensions differ, fix the declared unit"
        )
    return values * conversion_factor(declared, port.unit)


def load_reference(
    path: str | Path, ports: Mapping[str, Port], *, units: Mapping[str, str] | None = None
) -> Arrays:
    """Read the given ports from a CSV or Parquet file, checked and in each port's unit.

    Raises:
        ConfigError: the file is missing or of an unknown format, Parquet without the
            ``[pipeline]`` extra, or a declared unit for a name that is not a port.
        InvalidUnit: a declared unit is out of bounds or unknown.
        InterfaceMismatch: a port has no column, or a declared unit has the wrong dimension.
        InputError: unreadable, too large or too wide data (bounds: :mod:`modreg._csv`),
            non-numeric cells, NaN or Inf, or no rows.
    """
    source = f"reference data {str(path)!r}"
    declared = dict(units or {})
    _check_declared(declared, ports)
    data = _read_data(Path(path), source)
    if data.rows == 0:
        raise InputError(f"{source} has no rows: it cannot show anything")
    arrays: Arrays = {}
    for name, port in ports.items():
        values = _port_values(data, name, port, source)
        _check_finite(values, name, port, data, source)
        unit = (
            declared.get(name)
            or data.units.get(name)
            or data.units.get(column_names(name, port.shape)[0])
        )
        arrays[name] = _to_port_unit(values, name, port, unit, source)
    return arrays


def sample_ranges(
    ports: Mapping[str, Port],
    count: int,
    *,
    seed: int,
    fallback: Mapping[str, np.ndarray[Any, Any]] | None = None,
) -> tuple[Arrays, list[str]]:
    """Uniform, seeded draws over each input's declared range (per component for vectors).

    A port without a declared range is drawn over the span of ``fallback`` (the reference
    data); without either it cannot be sampled.

    Returns:
        The samples, and notes on ports that had no declared range.

    Raises:
        InputError: a port has neither a declared range nor data to take a span from.
    """
    rng = np.random.default_rng(seed)
    samples: Arrays = {}
    notes: list[str] = []
    for name, port in ports.items():
        if port.range is not None:
            low, high = port.range
        elif fallback is not None and name in fallback:
            low, high = float(np.min(fallback[name])), float(np.max(fallback[name]))
            notes.append(
                f"input {name!r} declares no range; sampled the data's [{low:g}, {high:g}]"
            )
        else:
            raise InputError(f"input {name!r} declares no range and there is no data to span")
        if not math.isfinite(low) or not math.isfinite(high):  # pragma: no cover - validated
            raise InputError(f"input {name!r} has a non-finite range")
        samples[name] = rng.uniform(low, high, size=(count, *port.shape))
    return samples, notes
