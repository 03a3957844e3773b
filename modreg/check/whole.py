"""Whole-model replacement accuracy: a user's torch model before and after a swap.

:func:`replace_in` runs the original and the swapped model (``modreg.swap``) on the user's
batches and holds every output of the swapped one to the original's, in the language of
``modreg check replace``: the same metrics (:mod:`._metrics`), tolerances (``1%`` of the
output's RMS, or an absolute number) and :class:`~modreg.check.report.CheckReport` (table,
JSON, JUnit). The original is the reference: there is no ground truth in a user's batches.
Given the capture the swap used, the module is also held to the part alone, on the rows
captured from it (``replace_in:part``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from modreg.check._metrics import Metric, perfect, scale, score
from modreg.check.replace import PortComparison, _tolerance
from modreg.check.report import CheckReport, Status, run_check
from modreg.errors import GraphError, InputError, InterfaceMismatch
from modreg.spec.tolerance import Tolerance

if TYPE_CHECKING:
    import torch.nn as nn

    from modreg.capturing import Capture

__all__ = ["replace_in"]

Array = np.ndarray[Any, Any]


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every tensor in a model's output, named by where it sits: ``out``, ``out[1]``,
    ``out.pos``."""
    import torch

    if isinstance(value, torch.Tensor):
        yield path, value
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")


def _outputs(model: nn.Module, batches: Iterable[Any], which: str) -> dict[str, list[Array]]:
    """Each output leaf of ``model`` over every batch, flattened to float64 rows."""
    import torch

    from modreg.capturing._batches import eval_mode, run_batch

    found: dict[str, list[Array]] = {}
    with torch.no_grad(), eval_mode(model):
        for index, batch in enumerate(batches):
            output = run_batch(model, batch, index, f"the {which} model")
            for name, tensor in _leaves(output, "out"):
                found.setdefault(name, []).append(tensor.detach().double().cpu().numpy())
    if not found:
        raise InputError(f"the {which} model returned no tensor over the batches: give batches")
    return found


def _paired(
    before: dict[str, list[Array]], after: dict[str, list[Array]]
) -> dict[str, tuple[Array, Array]]:
    """Each output of both models, every batch's values in one flat array."""
    if list(before) != list(after):
        raise InterfaceMismatch(
            f"the swapped model returns {list(after)}, the original {list(before)}: a swap "
            "must keep the model's output layout"
        )
    pairs: dict[str, tuple[Array, Array]] = {}
    for name in before:
        shapes = [a.shape for a in before[name]], [a.shape for a in after[name]]
        if shapes[0] != shapes[1]:
            raise InterfaceMismatch(
                f"output {name} has shapes {shapes[1][:2]} in the swapped model and "
                f"{shapes[0][:2]} in the original: a swap must keep every output's shape"
            )
        pairs[name] = (_flat(before[name]), _flat(after[name]))
    return pairs


def _flat(arrays: list[Array]) -> Array:
    return np.concatenate([a.ravel() for a in arrays])


def _verdict(
    rows: list[PortComparison], tolerance: Tolerance, against: str
) -> tuple[Status, str, tuple[str, ...], dict[str, Any]]:
    bad = [r for r in rows if not r.ok]
    worst = bad[0] if bad else max(rows, key=lambda r: r.degradation - r.limit)
    verdict = f"disagrees beyond tolerance {tolerance}" if bad else "within tolerance"
    message = f"{worst.line(tolerance)} vs {against}: {verdict}"
    data = {"ports": [r.to_json() for r in rows], "tolerance": str(tolerance), "against": against}
    return ("fail" if bad else "pass"), message, tuple(r.line(tolerance) for r in rows), data


def _part_rows(
    cap: Capture, swapped: nn.Module, metric: Metric, tol: Tolerance
) -> list[PortComparison]:
    """The swapped-in module against the captured part, on the captured rows."""
    import torch

    from modreg.capturing import SwappedPart
    from modreg.runtime._equation import torch_dtype

    part = swapped.get_submodule(cap.name) if cap.name else None
    if not isinstance(part, SwappedPart):
        raise GraphError(
            f"{cap.name!r} of the swapped model is no swapped part: give the capture that "
            "modreg.swap used for this model"
        )
    table = cap.table()
    device = next((t.device for t in part.built.buffers()), torch.device("cpu"))
    feed = {
        n: torch.as_tensor(table[n] * k, dtype=torch_dtype(part.ports[n].dtype), device=device)
        for n, k in part.into.items()
    }
    with torch.no_grad():
        out = part.built(feed)
    rows = []
    for port, spec in cap.interface.outputs.items():
        got = out[port].double().cpu().numpy() * part.back[port]
        size = scale(metric, table[port])
        rows.append(
            PortComparison(
                port,
                spec.unit,
                metric,
                perfect(metric),
                score(metric, got, table[port]),
                size,
                tol.limit(scale=size),
            )
        )
    return rows


def replace_in(
    model: nn.Module,
    swapped: nn.Module,
    batches: Iterable[Any],
    *,
    tolerance: str | Tolerance = "1%",
    metric: Metric = "rmse",
    report: CheckReport | None = None,
    label: str | None = None,
    check: str = "replace_in",
    capture: Capture | None = None,
) -> CheckReport:
    """Hold every output of ``swapped`` to ``model``'s on the user's batches.

    Args:
        model: the original torch model (run in eval mode, without gradients, left as it was).
        swapped: the model with a part replaced (:func:`modreg.swap`).
        batches: what both are called on (tuples of positional arguments, dicts of keyword
            arguments, or single tensors); iterated once per model, so give a list.
        tolerance, metric: as for ``modreg check replace`` (``1%`` of the original output's
            RMS, or an absolute number; ``rmse``, ``mae``, ``max_rel`` or ``r2``).
        report: add the result to this report (default: a new one).
        label: the result's module name (default: what ``swapped.modreg_swaps`` records).
        capture: the capture ``swapped`` was made with: also hold the module to the part
            alone on its captured rows (result ``check:part``).

    Returns:
        The report, with the result ``check`` (and ``check:part``): pass or fail, each
        output's figures in its details and ``data``.

    Raises:
        ConfigError: the tolerance does not parse.
    """
    report = report if report is not None else CheckReport()
    tol = _tolerance(tolerance)
    batches = list(batches)
    records = getattr(swapped, "modreg_swaps", [])
    swaps = ", ".join(f"{r.module}@{r.version} as {r.part}" for r in records)
    name = label or f"{type(model).__name__}" + (f" with {swaps}" if swaps else "")
    with run_check(report, name, check) as outcome:
        pairs = _paired(_outputs(model, batches, "original"), _outputs(swapped, batches, "swapped"))
        rows = []
        for port, (before, after) in pairs.items():
            size = scale(metric, before)
            replaced = score(metric, after, before)
            rows.append(
                PortComparison(
                    port, "", metric, perfect(metric), replaced, size, tol.limit(scale=size)
                )
            )
        outcome.set(*_verdict(rows, tol, f"the original on {len(batches)} batch(es)"))
    if capture is not None:
        with run_check(report, name, f"{check}:part") as outcome:
            rows = _part_rows(capture, swapped, metric, tol)
            outcome.set(*_verdict(rows, tol, f"{capture.label} on {len(capture)} captured rows"))
    return report
