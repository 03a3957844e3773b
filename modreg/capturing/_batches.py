"""Running a user's model the way its own code would: batches in, eval mode, no gradients.

A batch is a tuple (or list) of positional arguments, a dict of keyword arguments, or a
single tensor; the same rule turns what a port mapping's inverse returns (``call=``) into a
submodule's arguments.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch.nn as nn

from modreg.errors import InputError, ModregError

__all__ = ["call_with", "eval_mode", "first_tensor", "run_batch"]


def call_with(module: nn.Module, arguments: Any) -> Any:
    """``module(*arguments)`` for a tuple or list, ``module(**arguments)`` for a dict, else
    ``module(arguments)``."""
    if isinstance(arguments, Mapping):
        return module(**arguments)
    if isinstance(arguments, tuple | list):
        return module(*arguments)
    return module(arguments)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode inside, every submodule's own ``training`` flag restored after, even on error.

    Restoring each flag (not ``module.train(was)``) keeps a user's frozen batch-norm layer
    in eval mode inside a model that trains.
    """
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def first_tensor(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The first tensor among a call's arguments (None when there is none)."""
    import torch

    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


def run_batch(model: nn.Module, batch: Any, index: int, who: str) -> Any:
    """``model`` on one batch; a failure of the user's own forward is one InputError.

    ``who`` names the model in the message (``"the original model"``).
    """
    try:
        return call_with(model, batch)
    except ModregError:
        raise
    except Exception as exc:  # the user's own forward: translated at the boundary
        raise InputError(
            f"{who} failed on batch {index}: {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}; a batch is a tuple of positional arguments, "
            "a dict of keyword arguments or one tensor"
        ) from exc
