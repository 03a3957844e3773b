"""Energy and CO₂ of running code, measured with codecarbon offline: always an estimate.

codecarbon reads CPU power from RAPL counters where the kernel exposes them; elsewhere (most
VMs) it estimates it as the CPU's TDP × the process's CPU load, and RAM power from a model of
the installed memory. Which one it used is part of every figure's ``method``. CO₂ is the
energy × a grid's carbon intensity: a country's mix from codecarbon's offline tables
(``country``, 3-letter ISO code) or a figure you give (``grid_g_per_kwh``).

Offline means offline: :class:`codecarbon.OfflineEmissionsTracker` makes no network call,
writes no file (``output_methods=[]``, no lock file) and logs only errors. Without
codecarbon installed :func:`measure` returns None: energy figures are then absent, never zero.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from modreg.errors import InputError

__all__ = ["DEFAULT_COUNTRY", "EnergyEstimate", "Meter", "available", "measure", "track"]

DEFAULT_COUNTRY = "USA"
_JOULES_PER_KWH = 3.6e6
_CPU_METHODS = {
    "intel_rapl": "CPU power read from RAPL counters",
    "cpu_load": "CPU power estimated as TDP × the process's CPU load",
    "constant": "CPU power estimated as a constant share of TDP",
    "intel_power_gadget": "CPU power read from Intel Power Gadget",
    "apple_powermetrics": "CPU power read from powermetrics",
}


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy and CO₂ of ``calls`` runs of some work, and how they were estimated."""

    joules: float
    co2_g: float
    seconds: float
    calls: int
    method: str

    def per_call(self) -> tuple[float, float]:
        """(J, g CO₂eq) of one call."""
        return self.joules / self.calls, self.co2_g / self.calls


def available() -> bool:
    """Whether codecarbon is installed (without importing it)."""
    return importlib.util.find_spec("codecarbon") is not None


def _tracker(country: str) -> Any:
    from modreg._extras import needs_extra

    # codecarbon found but failing to import: say so, not "unexpected ImportError"
    with warnings.catch_warnings(), needs_extra("energy", "measuring energy"):
        warnings.simplefilter("ignore")
        from codecarbon import OfflineEmissionsTracker
        from codecarbon.input import DataSource

    logging.getLogger("codecarbon").setLevel(logging.ERROR)  # after import: it sets INFO
    if country not in DataSource().get_global_energy_mix_data():  # type: ignore[no-untyped-call]
        raise InputError(
            f"codecarbon has no energy mix for country {country!r}: give a 3-letter ISO code "
            "such as 'USA', 'FRA' or 'DEU', or grid_g_per_kwh"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # codecarbon swallows errors, warnings-as-errors too
        return OfflineEmissionsTracker(
            country_iso_code=country,
            output_methods=[],  # no emissions.csv, no API, no logger output
            log_level="error",
            measure_power_secs=1,
            tracking_mode="process",  # this process's load, not the neighbours'
            allow_multiple_runs=True,  # no lock file
        )


def _method(tracker: Any, data: Any, grid: str) -> str:
    from importlib.metadata import version

    modes = [getattr(h, "_mode", None) for h in getattr(tracker, "_hardware", ())]
    cpu = next((_CPU_METHODS.get(m, f"CPU power by {m}") for m in modes if m), "CPU power unknown")
    return (
        f"estimate: codecarbon {version('codecarbon')} offline, {cpu} ({data.cpu_model}), "
        f"RAM by codecarbon's memory model, {grid}"
    )


class Meter:
    """What :func:`track` measured: ``estimate`` is set when the block ends (None without
    codecarbon); ``calls`` is how many runs of the work the block counted."""

    def __init__(self) -> None:
        self.estimate: EnergyEstimate | None = None
        self.calls = 1


@contextmanager
def track(
    *, country: str = DEFAULT_COUNTRY, grid_g_per_kwh: float | None = None
) -> Iterator[Meter]:
    """Measure the energy and CO₂ of the block (``meter.estimate``, None without codecarbon).

    Raises:
        InputError: a country code codecarbon does not know, or a negative intensity.
    """
    meter = Meter()
    if grid_g_per_kwh is not None and not grid_g_per_kwh >= 0:
        raise InputError(f"grid_g_per_kwh={grid_g_per_kwh} must be >= 0 (g CO2eq per kWh)")
    if not available():
        yield meter
        return
    tracker = _tracker(country)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracker.start()
    start = time.perf_counter()
    try:
        yield meter
    finally:
        elapsed = time.perf_counter() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracker.stop()
    data = getattr(tracker, "final_emissions_data", None)
    if data is None:  # codecarbon logs and swallows its own failures: no figure, not zero
        return
    joules = float(data.energy_consumed) * _JOULES_PER_KWH
    if grid_g_per_kwh is not None:
        co2, grid = joules / _JOULES_PER_KWH * grid_g_per_kwh, f"grid {grid_g_per_kwh:g} g/kWh"
    else:
        co2 = float(data.emissions) * 1000.0
        intensity = co2 / (joules / _JOULES_PER_KWH) if joules else 0.0
        grid = f"grid of {data.country_name} ({country}, {intensity:.0f} g/kWh)"
    method = _method(tracker, data, grid)
    meter.estimate = EnergyEstimate(joules, co2, elapsed, meter.calls, method)


def measure(
    work: Callable[[], object],
    *,
    seconds: float = 0.5,
    country: str = DEFAULT_COUNTRY,
    grid_g_per_kwh: float | None = None,
) -> EnergyEstimate | None:
    """Run ``work`` repeatedly for about ``seconds`` under codecarbon; None without it.

    Raises:
        InputError: a country code codecarbon does not know, or a negative intensity.
    """
    if not available():
        return None
    work()  # warm-up outside the measurement
    with track(country=country, grid_g_per_kwh=grid_g_per_kwh) as meter:
        calls, start = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - start < seconds:
            work()
            calls += 1
        meter.calls = calls
    return meter.estimate
