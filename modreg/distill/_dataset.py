"""Data mode: a CSV or Parquet table plus a units file becomes ports and arrays.

Columns follow the reference-data convention of ``modreg check``: ``rho`` is a scalar port,
``v[0]``, ``v[1]``, ``v[2]`` are the components of a vector port ``v``. The units file is YAML
mapping each column (or a vector port's name, for all its components) to a pint unit string;
``dimensionless`` is allowed. Every column needs a unit: a guessed unit would make the
dimensional analysis, and the equation written from it, silently wrong.

Input ports get the data's min/max as their ``range``, so the written module declares the
domain it was fitted on (and ``modreg check`` samples only there).
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modreg.check._data import column_names
from modreg.errors import DistillError, InvalidUnit
from modreg.spec.grammar import RESERVED_NAMES
from modreg.spec.manifest import Port
from modreg.spec.units import conversion_factor, parse_unit, same_dimension

__all__ = [
    "Dataset",
    "Table",
    "file_sha256",
    "load_dataset",
    "load_port_data",
    "load_units",
    "read_table",
]

Arrays = dict[str, np.ndarray[Any, Any]]
_COMPONENT_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\]")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Dataset:
    """A table read as ports: values shaped ``(rows, *port.shape)`` in each port's unit."""

    path: Path
    sha256: str
    inputs: dict[str, Port]
    outputs: dict[str, Port]
    arrays: Arrays

    @property
    def rows(self) -> int:
        return len(next(iter(self.arrays.values())))


def file_sha256(path: Path) -> str:
    """``sha256:<hex>`` of a file, recorded as the provenance of what was distilled."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def load_units(path: Path) -> dict[str, str]:
    """Read the units YAML (column or port name -> pint unit string), every unit parsed.

    Raises:
        DistillError: the file is missing, not a mapping of strings, or names a unit pint
            does not know.
    """
    if not path.is_file():
        raise DistillError(f"units file {str(path)!r} does not exist: write COLUMN: UNIT lines")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:  # nesting: [[[[...
        raise DistillError(
            f"units file {str(path)!r} is not valid YAML: write one 'COLUMN: UNIT' per line"
        ) from exc
    if not isinstance(data, dict) or not data:
        raise DistillError(f"units file {str(path)!r} must map each column to a unit, e.g. 'r: m'")
    units: dict[str, str] = {}
    for column, unit in data.items():
        text = "dimensionless" if unit in (1, "1", "") else unit
        if not isinstance(text, str):
            raise DistillError(
                f"units file {str(path)!r}: unit of {column!r} is {unit!r}, not a string: "
                "write a pint unit such as 'm/s' or 'dimensionless'"
            )
        try:
            parse_unit(text)
        except InvalidUnit as exc:
            raise DistillError(f"units file {str(path)!r}, column {column!r}: {exc}") from exc
        units[str(column)] = text
    return units


@dataclass(frozen=True)
class Table:
    """A table's numeric columns by name, in file order (vector list cells already split)."""

    source: str
    columns: dict[str, np.ndarray[Any, Any]]

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def read_table(path: Path) -> Table:
    """Read CSV (standard library) or Parquet (needs pandas and pyarrow) as float columns.

    Raises:
        DistillError: missing or unreadable file, unknown format, a non-numeric cell.
        ConfigError: a Parquet file, and the pipeline extra (pandas, pyarrow) is missing.
    """
    source = f"data file {str(path)!r}"
    if not path.is_file():
        raise DistillError(f"{source} does not exist: fix the --data path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return Table(source, _read_csv(path, source))
    if suffix in (".parquet", ".pq"):
        return Table(source, _read_parquet(path, source))
    raise DistillError(f"{source} is neither .csv nor .parquet: convert it to one of them")


def _read_csv(path: Path, source: str) -> dict[str, np.ndarray[Any, Any]]:
    """The shared bounded reader (:mod:`modreg._csv`); its refusals become DistillErrors."""
    from modreg._csv import read_csv
    from modreg.errors import InputError

    try:
        return read_csv(path, source).columns
    except InputError as exc:
        raise DistillError(str(exc)) from exc


def _read_parquet(path: Path, source: str) -> dict[str, np.ndarray[Any, Any]]:
    from modreg._extras import needs_extra

    with needs_extra("pipeline", f"reading {source}", instead="give a CSV"):
        import pandas as pd
        import pyarrow  # noqa: F401
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DistillError(f"cannot read {source}: {' '.join(str(exc).split())}") from exc
    columns: dict[str, np.ndarray[Any, Any]] = {}
    for name in map(str, frame.columns):
        columns |= _parquet_column(frame[name], name, source)
    return columns


def _parquet_column(series: Any, name: str, source: str) -> dict[str, np.ndarray[Any, Any]]:
    """One numeric column, or a list column ``v`` split into ``v[0]``, ``v[1]``, ..."""
    try:
        if series.dtype == object:
            stacked = np.stack([np.asarray(cell, dtype=np.float64) for cell in series])
            return {f"{name}[{k}]": stacked[:, k] for k in range(stacked.shape[1])}
        return {name: series.to_numpy(dtype=np.float64)}
    except (TypeError, ValueError, IndexError) as exc:
        raise DistillError(
            f"{source}: column {name!r} is not numeric: remove text values or drop the column"
        ) from exc


def _group_columns(columns: list[str], source: str) -> dict[str, list[tuple[int, str]]]:
    """Port name -> its columns: ``[(0, 'rho')]`` or ``[(0, 'v[0]'), (1, 'v[1]'), ...]``."""
    ports: dict[str, list[tuple[int, str]]] = {}
    for column in columns:
        match = _COMPONENT_RE.fullmatch(column)
        name, index = (match.group(1), int(match.group(2))) if match else (column, -1)
        if not _IDENT_RE.fullmatch(name) or keyword.iskeyword(name) or name.startswith("__"):
            raise DistillError(
                f"{source}: column {column!r} is not a port name: rename it to an identifier "
                "such as 'v_x' (or 'v[0]' for a vector component)"
            )
        if name in RESERVED_NAMES:
            raise DistillError(
                f"{source}: column {column!r} has a name the equation grammar reserves "
                f"({name} is a function or constant there): rename the column"
            )
        ports.setdefault(name, []).append((index, column))
    for name, parts in ports.items():
        indices = sorted(i for i, _ in parts)
        if len(parts) > 1 and indices != list(range(len(parts))):
            raise DistillError(
                f"{source}: the columns of vector port {name!r} are "
                f"{[c for _, c in parts]}: give {name}[0] ... {name}[{len(parts) - 1}] once each"
            )
    return {name: sorted(parts) for name, parts in ports.items()}


def _port_unit(name: str, parts: list[tuple[int, str]], units: Mapping[str, str]) -> list[str]:
    """The declared unit of each of the port's columns (the port name stands for all)."""
    out = []
    for _, column in parts:
        unit = units.get(column) or units.get(name)
        if unit is None:
            raise DistillError(
                f"column {column!r} has no unit: add '{column}: UNIT' to the units file "
                "(use 'dimensionless' for pure numbers)"
            )
        out.append(unit)
    return out


def _values(
    table: Table, name: str, parts: list[tuple[int, str]], units: list[str]
) -> tuple[np.ndarray[Any, Any], str]:
    """The port's values in the unit of its first column, shape ``(rows,)`` or ``(rows, k)``."""
    values = np.stack([table.columns[c] for _, c in parts], axis=1)
    bad_rows = ~np.isfinite(values).all(axis=1)
    if bad_rows.any():
        row = int(np.argmax(bad_rows))
        raise DistillError(
            f"{table.source}: {name!r} holds NaN, Inf or an empty cell in "
            f"{int(bad_rows.sum())} row(s) (first at data row {row + 1}): drop or fix those rows"
        )
    for k, unit in enumerate(units):
        if not same_dimension(unit, units[0]):
            raise DistillError(
                f"{table.source}: the components of {name!r} have units {units[0]} and {unit}, "
                "which cannot be made consistent: give every component the same dimension"
            )
        values[:, k] *= conversion_factor(unit, units[0])
    return (values[:, 0] if parts[0][0] < 0 else values), units[0]


def _data_range(values: np.ndarray[Any, Any]) -> tuple[float, float] | None:
    low, high = float(np.min(values)), float(np.max(values))
    return (low, high) if low < high else None


def load_dataset(path: Path, target: str, units_path: Path) -> Dataset:
    """Read ``path`` as one input port per non-target column (group) and the ``target`` port.

    Raises:
        DistillError: unreadable file, no rows, a missing target or unit, non-numeric or
            non-finite values, units of one port that cannot be made consistent, a constant
            target.
    """
    units = load_units(units_path)
    table = read_table(path)
    if table.rows == 0:
        raise DistillError(f"{table.source} has no rows: give at least a few hundred samples")
    groups = _group_columns(list(table.columns), table.source)
    if target not in groups:
        raise DistillError(
            f"{table.source} has no target column {target!r}: pick --target from {sorted(groups)}"
        )
    unknown = sorted(set(units) - set(groups) - set(table.columns))
    if unknown:
        raise DistillError(
            f"units file {str(units_path)!r} names columns {unknown} that {table.source} "
            "lacks: fix the spelling or remove them"
        )
    if len(groups) < 2:
        raise DistillError(f"{table.source} has only the target column: add input columns")
    return _dataset(path, table, groups, units, target)


def _dataset(
    path: Path,
    table: Table,
    groups: dict[str, list[tuple[int, str]]],
    units: Mapping[str, str],
    target: str,
) -> Dataset:
    inputs: dict[str, Port] = {}
    outputs: dict[str, Port] = {}
    arrays: Arrays = {}
    for name, parts in groups.items():
        values, unit = _values(table, name, parts, _port_unit(name, parts, units))
        shape = tuple(values.shape[1:])
        if name == target:
            if np.ptp(values) == 0:
                raise DistillError(
                    f"{table.source}: target {target!r} is constant ({values.flat[0]!r}) on "
                    "every row: nothing to distil, give data where it varies"
                )
            outputs[name] = Port(unit=unit, shape=shape)
        else:
            inputs[name] = Port(unit=unit, shape=shape, range=_data_range(values))
        arrays[name] = values
    return Dataset(path, file_sha256(path), inputs, outputs, arrays)


def load_port_data(
    path: Path, ports: Mapping[str, Port], *, required: bool, units_path: Path | None = None
) -> Arrays | None:
    """The given ports' values from a table, converted to each port's unit.

    Columns are in the port's unit unless the units file declares another of the same
    dimension. With ``required=False`` a port without columns gives None (data without the
    outputs still serves as inputs to query the teacher on).

    Raises:
        DistillError: a required column is missing, a value is not finite, or a declared
            unit has another dimension than the port's.
    """
    units = load_units(units_path) if units_path is not None else {}
    table = read_table(path)
    if table.rows == 0:
        raise DistillError(f"{table.source} has no rows: give at least a few hundred samples")
    arrays: Arrays = {}
    for name, port in ports.items():
        parts = list(enumerate(column_names(name, port.shape)))
        missing = [c for _, c in parts if c not in table.columns]
        if missing and not required:
            return None
        if missing:
            raise DistillError(
                f"{table.source} has no column {missing[0]!r} for input {name!r} "
                f"({port.unit}): its columns are {list(table.columns)[:12]}"
            )
        declared = [units.get(c) or units.get(name) or port.unit for _, c in parts]
        values, unit = _values(
            table, name, [(-1 if not port.shape else i, c) for i, c in parts], declared
        )
        arrays[name] = _to_port_unit(values, unit, name, port, table.source)
    return arrays


def _to_port_unit(
    values: np.ndarray[Any, Any], unit: str, name: str, port: Port, source: str
) -> np.ndarray[Any, Any]:
    if not same_dimension(unit, port.unit):
        raise DistillError(
            f"{source}: {name!r} is declared in {unit} but the port is in {port.unit}; the "
            "dimensions cannot be made consistent: fix the units file"
        )
    return values * conversion_factor(unit, port.unit)
