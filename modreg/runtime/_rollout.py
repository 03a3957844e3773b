"""Rollouts: integrate a built model as the right-hand side of an ODE, differentiably.

The state is a dict of tensors by name, batched over trajectories. ``derivatives`` says where
each state's time derivative comes from: an output port of the model (``"v": "a"``) or
another state (``"x": "v"``). Model inputs are filled from the state and from ``inputs``
(per-trajectory values held constant, such as air density).

Methods:

- ``"rk4"``: classic fourth-order Runge-Kutta.
- ``"euler"``: semi-implicit (symplectic) Euler. States whose derivative is a model output
  are updated first; states whose derivative is another state then use its *new* value
  (``v += dt*a(x, v)``, then ``x += dt*v``), which keeps orbits and oscillators stable.

Every step is plain torch arithmetic, so gradients flow through all ``steps`` to the model's
trainable parts (backpropagation through time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from modreg.errors import InputError

__all__ = ["rollout"]

State = dict[str, Tensor]
_METHODS = ("rk4", "euler", "semi-implicit-euler")


def _derivative_fn(
    model: Any, state_names: list[str], derivatives: Mapping[str, str], inputs: Mapping[str, Tensor]
) -> Callable[[State], State]:
    interface = getattr(model, "interface", None)
    if interface is None:
        raise InputError(
            f"rollout needs a built modreg module (with ports), got {type(model).__name__}"
        )
    outputs = set(interface.outputs)
    for name, source in derivatives.items():
        if source not in outputs and source not in state_names:
            raise InputError(
                f"derivative of state {name!r} comes from {source!r}, which is neither an output "
                f"of the model ({sorted(outputs)}) nor a state ({state_names})"
            )
    needed = list(interface.inputs)
    missing = [n for n in needed if n not in state_names and n not in inputs]
    if missing:
        raise InputError(
            f"model input port(s) {missing} are neither states nor given in inputs=: pass them"
        )
    calls_model = any(source in outputs for source in derivatives.values())

    def derivative(state: State) -> State:
        out: dict[str, Tensor] = {}
        if calls_model:
            out = model({n: state[n] if n in state else inputs[n] for n in needed})
        return {n: out[s] if s in outputs else state[s] for n, s in derivatives.items()}

    return derivative


def _rk4(f: Callable[[State], State], state: State, dt: float) -> State:
    k1 = f(state)
    k2 = f({n: state[n] + 0.5 * dt * k1[n] for n in state})
    k3 = f({n: state[n] + 0.5 * dt * k2[n] for n in state})
    k4 = f({n: state[n] + dt * k3[n] for n in state})
    return {n: state[n] + (dt / 6.0) * (k1[n] + 2.0 * k2[n] + 2.0 * k3[n] + k4[n]) for n in state}


def _semi_implicit_euler(
    f: Callable[[State], State], state: State, dt: float, derivatives: Mapping[str, str]
) -> State:
    rates = f(state)
    new = {n: state[n] + dt * rates[n] for n, s in derivatives.items() if s not in state}
    pending = [n for n, s in derivatives.items() if s in state]
    while pending:  # x' = v uses the updated v; chains resolve in dependency order
        ready = [n for n in pending if derivatives[n] in new or derivatives[n] not in pending]
        for n in ready or pending[:1]:
            source = derivatives[n]
            new[n] = state[n] + dt * new.get(source, state[source])
            pending.remove(n)
    return new


def rollout(
    model: Any,
    state: Mapping[str, Tensor],
    *,
    dt: float,
    steps: int,
    derivatives: Mapping[str, str],
    method: str = "rk4",
    inputs: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Integrate ``d state / dt`` given by ``model`` for ``steps`` steps of ``dt``.

    Args:
        model: a built module (``modreg.build`` or ``Hybrid.build``).
        state: initial state by name, each ``(batch, *shape)``.
        dt: the time step (in the unit the model's ports assume, e.g. seconds).
        steps: the number of steps.
        derivatives: state name -> model output or state holding its time derivative.
        method: ``"rk4"`` or ``"euler"`` (semi-implicit).
        inputs: extra model inputs, constant over time.

    Returns:
        Trajectories by state name, each ``(steps + 1, batch, *shape)``, starting at ``state``.

    Raises:
        InputError: bad step settings, or states/inputs that do not cover the model's ports.

    Example:
        >>> traj = rollout(net, {"x": x0, "v": v0}, dt=0.01, steps=100,
        ...                derivatives={"x": "v", "v": "a"})  # doctest: +SKIP
    """
    if method not in _METHODS:
        raise InputError(f"unknown method {method!r}: use 'rk4' or 'euler' (semi-implicit)")
    if not (isinstance(steps, int) and steps >= 0):
        raise InputError(f"steps={steps!r} must be a non-negative integer")
    if not (math.isfinite(dt) and dt > 0):
        raise InputError(f"dt={dt!r} must be a positive finite number")
    if set(derivatives) != set(state):
        raise InputError(
            f"derivatives name {sorted(derivatives)} but the state has {sorted(state)}: "
            "give one derivative source per state"
        )
    f = _derivative_fn(model, list(state), derivatives, dict(inputs or {}))
    current = dict(state)
    history: dict[str, list[Tensor]] = {n: [t] for n, t in current.items()}
    for _ in range(steps):
        if method == "rk4":
            current = _rk4(f, current, dt)
        else:
            current = _semi_implicit_euler(f, current, dt, derivatives)
        for name, tensor in current.items():
            history[name].append(tensor)
    return {name: torch.stack(tensors) for name, tensors in history.items()}
