"""Writing a captured table as reference data: CSV, or Parquet when pyarrow is installed.

The columns follow the reference-data convention :mod:`modreg.check._data` and
:mod:`modreg.distill._dataset` read: ``rho`` for a scalar port, ``v[0]``, ``v[1]`` for the
components of a vector port (flat columns in Parquet too, each carrying its port's unit as
field metadata ``unit``). A units YAML beside it (``port: unit``) is what ``modreg distill
--data ... --units`` needs.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modreg.errors import ConfigError
from modreg.spec.manifest import Port

__all__ = ["column_names", "write_table", "write_units"]

Array = np.ndarray[Any, Any]


def column_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """``['rho']`` or ``['v[0]', 'v[1]']``: the convention of ``check._data.column_names``,
    spelled here because this layer sits below ``check`` (the tests read the files back)."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, i))}]" for i in itertools.product(*map(range, shape))]


def _columns(arrays: Mapping[str, Array], ports: Mapping[str, Port]) -> dict[str, Array]:
    flat: dict[str, Array] = {}
    for name, port in ports.items():
        values = arrays[name].reshape(len(arrays[name]), -1)
        for k, column in enumerate(column_names(name, tuple(port.shape))):
            flat[column] = values[:, k]
    return flat


def write_table(path: Path, arrays: Mapping[str, Array], ports: Mapping[str, Port]) -> Path:
    """Write ``arrays`` (``(rows, *shape)`` per port) to ``path``; the suffix picks the format.

    Raises:
        ConfigError: a suffix other than .csv/.parquet/.pq, or Parquet without pyarrow.
    """
    columns = _columns(arrays, ports)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(zip(*(map(repr, c.tolist()) for c in columns.values()), strict=True))
        return path
    if suffix in (".parquet", ".pq"):
        _write_parquet(path, columns, ports)
        return path
    raise ConfigError(f"cannot save a capture as {path.name!r}: name a .csv or .parquet file")


def _write_parquet(path: Path, columns: Mapping[str, Array], ports: Mapping[str, Port]) -> None:
    from modreg._extras import needs_extra

    with needs_extra("pipeline", "saving a capture as Parquet", instead="save a .csv"):
        import pyarrow as pa
        import pyarrow.parquet as pq
    units = {c: p.unit for n, p in ports.items() for c in column_names(n, tuple(p.shape))}
    fields = [pa.field(c, pa.float64(), metadata={"unit": units[c]}) for c in columns]
    table = pa.Table.from_arrays([pa.array(v) for v in columns.values()], schema=pa.schema(fields))
    pq.write_table(table, path)


def write_units(path: Path, ports: Mapping[str, Port]) -> Path:
    """``port: unit`` YAML, the units file data-mode distillation reads."""
    path.write_text(yaml.safe_dump({n: p.unit for n, p in ports.items()}, sort_keys=False))
    return path
