"""Submodules by dotted name (``encoder.layers.2.mlp``): find one, or put another in its place."""

from __future__ import annotations

import difflib

import torch.nn as nn

from modreg.errors import GraphError

__all__ = ["find_part", "put_part"]


def find_part(model: nn.Module, name: str) -> nn.Module:
    """The submodule ``name`` of ``model``.

    Raises:
        GraphError: no submodule has that name; the message names the nearest ones.
    """
    parts = dict(model.named_modules())
    if name and name in parts:
        part: nn.Module = parts[name]
        return part
    names = [n for n in parts if n]
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(map(repr, near))}?" if near else f"its parts: {names[:8]}"
    raise GraphError(
        f"{type(model).__name__} has no submodule {name!r}: {hint} "
        "(names as model.named_modules() gives them)"
    )


def put_part(model: nn.Module, name: str, part: nn.Module) -> None:
    """Replace submodule ``name`` of ``model`` (in place) by ``part``."""
    find_part(model, name)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, part)
