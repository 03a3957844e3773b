"""Ports at the MLflow boundary: the signature, the request check, the response layout.

MLflow signatures carry names, shapes and dtypes but no units or ranges, so the flavor
keeps the whole port (unit, shape, dtype, range) in its own metadata and checks every
request against it before torch sees a value. A request is either a mapping of port name to
array-like (``{"v": [[10, 0, 5]], "rho": [1.2]}``) or a pandas DataFrame whose columns are
port names, a vector port ``v`` of shape ``[3]`` spread over ``v[0]``, ``v[1]``, ``v[2]``
(``x[0,1]`` for matrices, as in ``modreg check replace``'s reference data).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from modreg.errors import InputError
from modreg.spec.manifest import Port

__all__ = [
    "column_names",
    "from_frame",
    "port_metadata",
    "ports_from_metadata",
    "signature",
    "to_arrays",
    "to_frame",
]

# numpy has no bfloat16: requests arrive as float32 and are cast by the module.
_NUMPY_DTYPES = {"float16": "float16", "bfloat16": "float32", "float32": "float32"}


def _numpy_dtype(port: Port) -> np.dtype[Any]:
    return np.dtype(_NUMPY_DTYPES.get(port.dtype, port.dtype))


def port_metadata(ports: Mapping[str, Port]) -> dict[str, dict[str, Any]]:
    """The ports as plain data for the MLmodel file (unit, shape, dtype, range)."""
    return {name: port.model_dump(mode="json", exclude_none=True) for name, port in ports.items()}


def ports_from_metadata(data: Mapping[str, Any]) -> dict[str, Port]:
    """Ports back from :func:`port_metadata` (validated like a manifest's)."""
    return {name: Port.model_validate(spec) for name, spec in data.items()}


def signature(outputs: Mapping[str, Port]) -> Any:
    """An MLflow signature of the outputs: one named tensor per port, batch axis first (``-1``).

    It has no input schema on purpose: the pyfunc checks requests against the ports itself
    (see ``_flavor.py``), so mlflow enforces nothing and serves every request format.
    """
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    specs: list[ColSpec | TensorSpec] = [
        TensorSpec(_numpy_dtype(p), (-1, *p.shape), name) for name, p in outputs.items()
    ]
    return ModelSignature(inputs=None, outputs=Schema(specs))


def column_names(name: str, port: Port) -> list[str]:
    """DataFrame columns of a port: ``rho``, or ``v[0]``, ``v[1]``... for a vector."""
    if not port.shape:
        return [name]
    indices = itertools.product(*(range(size) for size in port.shape))
    return [f"{name}[{','.join(str(i) for i in index)}]" for index in indices]


def from_frame(frame: Any, ports: Mapping[str, Port]) -> dict[str, Any]:
    """The arrays a DataFrame holds, by port name (``v[0]``, ``v[1]``... stacked into ``v``)."""
    arrays: dict[str, Any] = {}
    for name, port in ports.items():
        if port.shape and name in frame.columns:  # one column of lists (dataframe_records)
            arrays[name] = _stacked(name, frame[name], port)
            continue
        columns = column_names(name, port)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(
                f"input port {name!r} is missing: the DataFrame has no column "
                f"{', '.join(repr(c) for c in missing)} (columns: {list(frame.columns)})"
            )
        values = frame[columns].to_numpy()
        arrays[name] = values.reshape((len(frame), *port.shape))
    return arrays


def _stacked(name: str, column: Any, port: Port) -> Any:
    """A port's array from a DataFrame column holding one array-like per row."""
    try:
        return np.stack([np.asarray(cell, dtype=_numpy_dtype(port)) for cell in column])
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"input port {name!r} is not a numeric array of shape {_shape(port)}: {exc}"
        ) from exc


def _array(name: str, value: Any, port: Port) -> np.ndarray[Any, Any]:
    try:
        array = np.asarray(value, dtype=_numpy_dtype(port))
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"input port {name!r} is not a numeric array of shape {_shape(port)}: {exc}"
        ) from exc
    if array.ndim == len(port.shape) + 1 and array.shape[1:] == tuple(port.shape):
        return array
    raise InputError(
        f"input port {name!r} has shape {list(array.shape)}, expected {_shape(port)} "
        f"(one row per prediction)"
    )


def _shape(port: Port) -> str:
    return "(batch,)" if not port.shape else "(batch" + "".join(f", {s}" for s in port.shape) + ")"


def _check_values(name: str, array: np.ndarray[Any, Any], port: Port) -> None:
    if not np.isfinite(array).all():
        raise InputError(f"input port {name!r} holds NaN or Inf values: send finite numbers")
    if port.range is None or array.size == 0:
        return
    low, high = port.range
    below, above = array < low, array > high
    if below.any() or above.any():
        worst = float(array[below].min()) if below.any() else float(array[above].max())
        raise InputError(
            f"input port {name!r} holds {worst:g} {port.unit}, outside its declared range "
            f"[{low:g}, {high:g}] {port.unit}: the module is only valid there"
        )


def to_arrays(request: Any, ports: Mapping[str, Port]) -> dict[str, np.ndarray[Any, Any]]:
    """Checked arrays by port name from a request (mapping or DataFrame).

    Raises:
        InputError: a port missing, a value not numeric, a wrong shape, unequal batch sizes,
            NaN/Inf, or a value outside the port's declared range.
    """
    if hasattr(request, "columns") and hasattr(request, "to_numpy"):
        request = from_frame(request, ports)
    if not isinstance(request, Mapping):
        raise InputError(
            f"a request must map port names to arrays (or be a DataFrame), got "
            f"{type(request).__name__}: send {{{', '.join(repr(n) for n in ports)}: ...}}"
        )
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for name, port in ports.items():
        if name not in request:
            raise InputError(
                f"input port {name!r} is missing: send it as an array of shape {_shape(port)} "
                f"in {port.unit} (the request has {sorted(request)})"
            )
        arrays[name] = _array(name, request[name], port)
        _check_values(name, arrays[name], port)
    batches = {name: len(a) for name, a in arrays.items()}
    if len(set(batches.values())) > 1:
        raise InputError(f"input ports have different batch sizes {batches}: send equal rows")
    return arrays


def to_frame(outputs: Mapping[str, np.ndarray[Any, Any]], ports: Mapping[str, Port]) -> Any:
    """Outputs as a DataFrame, vector ports spread over ``F[0]``, ``F[1]``... columns."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for name, port in ports.items():
        flat = outputs[name].reshape(len(outputs[name]), max(1, math.prod(port.shape)))
        for index, column in enumerate(column_names(name, port)):
            columns[column] = flat[:, index]
    return pd.DataFrame(columns)
