"""Optional dependencies: the one error a missing extra turns into.

boto3 (``s3``), mlflow (``mlflow``), pandas and pyarrow (``pipeline``), onnx (``onnx``) and
model-signing (``sign``) are extras, imported only where they are used. Without one, the
import fails deep inside a command; :func:`needs_extra` turns that failure into a
:class:`~modreg.errors.ConfigError` whose message names the extra to install, so the CLI
prints one line instead of ``unexpected ModuleNotFoundError``.

Example:
    >>> import sys
    >>> sys.modules["not_installed"] = None  # what an absent package looks like
    >>> try:
    ...     with needs_extra("s3", "an s3:// registry"):
    ...         import not_installed
    ... except ConfigError as exc:
    ...     print(exc)
    an s3:// registry needs the s3 extra: pip install 'modreg[s3]' (not_installed is missing)
    >>> del sys.modules["not_installed"]
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from modreg.errors import ConfigError

__all__ = ["missing_extra", "needs_extra", "require_extra"]


def missing_extra(extra: str, what: str, package: str, *, instead: str = "") -> ConfigError:
    """The error for ``what`` lacking ``package``, which ``pip install 'modreg[extra]'`` brings.

    Args:
        instead: another way out, appended as ``, or <instead>`` (e.g. ``give a CSV``).
    """
    other = f", or {instead}" if instead else ""
    return ConfigError(
        f"{what} needs the {extra} extra: pip install 'modreg[{extra}]' ({package} is missing)"
        f"{other}"
    )


@contextmanager
def needs_extra(extra: str, what: str, *, instead: str = "") -> Iterator[None]:
    """Imports in the block that fail become :func:`missing_extra` (a ``ConfigError``).

    A broken install (a package present but one of its own imports failing) is reported the
    same way: reinstalling the extra is the fix for both.
    """
    try:
        yield
    except ImportError as exc:
        package = (exc.name or "a package it imports").partition(".")[0]
        raise missing_extra(extra, what, package, instead=instead) from exc


def require_extra(extra: str, what: str, *packages: str) -> None:
    """Refuse early, before any work, when a top-level package of ``extra`` is absent.

    Raises:
        ConfigError: one of ``packages`` cannot be found (see :func:`missing_extra`).
    """
    for package in packages:
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):  # a half-imported package: as good as missing
            found = False
        if not found:
            raise missing_extra(extra, what, package)
