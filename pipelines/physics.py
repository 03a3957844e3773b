"""Ground-truth simulators of the showcase: a baseball, and a meteorite in dark flight.

Both are a point mass under gravity and quadratic drag, ``a = g + F_drag / m`` with
``F_drag = -1/2 rho(z) C_d A |v| v``; the baseball flies through air of constant density,
the meteorite through an exponential atmosphere ``rho(z) = rho0 exp(-z / H)``. Integration is
RK4 with fine substeps, far more accurate than the measurement noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Body:
    """A sphere moving through air."""

    mass: float
    radius: float
    drag_coefficient: float

    @property
    def area(self) -> float:
        return float(np.pi * self.radius**2)

    def drag_constant(self, rho: float) -> float:
        """k with F = -k |v| v at air density rho."""
        return 0.5 * rho * self.drag_coefficient * self.area


def acceleration(
    body: Body, gravity: float, density: Callable[[Array], Array]
) -> Callable[[Array, Array], Array]:
    """a(x, v) for a batch of states: gravity plus quadratic drag."""
    g = np.array([0.0, 0.0, -gravity])

    def a(x: Array, v: Array) -> Array:
        rho = density(x[:, 2])[:, None]
        speed = np.linalg.norm(v, axis=1, keepdims=True)
        accel: Array = g - 0.5 * rho * body.drag_coefficient * body.area * speed * v / body.mass
        return accel

    return a


def integrate(
    accel: Callable[[Array, Array], Array],
    x0: Array,
    v0: Array,
    *,
    dt: float,
    steps: int,
    substeps: int,
) -> tuple[Array, Array]:
    """Positions and velocities ``(batch, steps + 1, 3)`` sampled every ``dt``."""
    h = dt / substeps
    xs, vs = [x0.copy()], [v0.copy()]
    x, v = x0.copy(), v0.copy()
    for _ in range(steps):
        for _ in range(substeps):
            k1x, k1v = v, accel(x, v)
            k2x, k2v = v + 0.5 * h * k1v, accel(x + 0.5 * h * k1x, v + 0.5 * h * k1v)
            k3x, k3v = v + 0.5 * h * k2v, accel(x + 0.5 * h * k2x, v + 0.5 * h * k2v)
            k4x, k4v = v + h * k3v, accel(x + h * k3x, v + h * k3v)
            x = x + h / 6 * (k1x + 2 * k2x + 2 * k3x + k4x)
            v = v + h / 6 * (k1v + 2 * k2v + 2 * k3v + k4v)
        xs.append(x)
        vs.append(v)
    return np.stack(xs, axis=1), np.stack(vs, axis=1)


def landing_points(x: Array, t: Array) -> tuple[Array, Array]:
    """Where and when each trajectory ``(batch, T, 3)`` first crosses z = 0 (linear interp.).

    A trajectory that never lands within the horizon reports its last point.
    """
    z = x[:, :, 2]
    below = z < 0
    first = np.where(below.any(axis=1), below.argmax(axis=1), z.shape[1] - 1)
    prev = np.maximum(first - 1, 0)
    rows = np.arange(x.shape[0])
    z0, z1 = z[rows, prev], z[rows, first]
    frac = np.where(z0 != z1, z0 / np.where(z0 != z1, z0 - z1, 1.0), 0.0).clip(0, 1)
    point = x[rows, prev] + frac[:, None] * (x[rows, first] - x[rows, prev])
    time = t[prev] + frac * (t[first] - t[prev])
    return point[:, :2], time
