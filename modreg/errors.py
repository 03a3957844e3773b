"""Every error modreg raises, in one tree.

Each leaf also inherits the standard exception a caller would naturally catch, so
``except LookupError`` works for a missing module just as ``except ModuleNotFound`` does.
Messages say what was wrong, the offending value, and how to fix it; the CLI prints
``str(exc)`` as one line.

```
ModregError
├── ConfigError(ValueError)               bad MODREG_* environment or option value
│   └── UsageError(ValueError)            a command's options or arguments contradict (exit 2)
├── InvalidManifest(ValueError)           modreg.yaml does not validate
│   ├── InvalidName(ValueError)           module name breaks the naming rules
│   ├── InvalidVersion(ValueError)        not a MAJOR.MINOR.PATCH version / bad spec
│   ├── InvalidUnit(ValueError)           pint cannot parse the unit string
│   ├── InvalidExpression(ValueError)     equation text outside the safe grammar
│   └── DimensionError(ValueError)        equation units do not match the port
├── InvalidModule(ValueError)             directory contents are unsafe or inconsistent
│   └── InvalidWeights(ValueError)        weights not safetensors / wrong tensors / non-finite
├── ModuleNotFound(LookupError)           name or version spec resolves to nothing
├── VersionExists(FileExistsError)        name@version already holds different bytes
├── IntegrityError(OSError)               stored bytes do not match their digest
├── StoreError(OSError)                   the registry's storage failed or refused (S3, disk)
│   ├── NotARegistry(OSError)             the location holds something that is not a registry
│   └── OfflineError(OSError)             the network is needed but MODREG_OFFLINE is set
├── InterfaceMismatch(TypeError)          ports, shapes, dtypes or units do not fit
├── GraphError(ValueError)                a hybrid graph is malformed (cycle, unknown port)
├── InputError(ValueError)                bad tensors reaching a built model (NaN, shape)
├── DistillError(ValueError)              distillation cannot run on this input
├── ExportError(ValueError)               the module cannot be exported in that format
├── CheckFailed(AssertionError)           a CI check ran and did not hold
├── DependencyError(LookupError)          requires that cannot be met, a cycle, a stale lock
├── SignatureError(ValueError)            a bundle or key is malformed, forged or untrusted
└── PipelineError(RuntimeError)           a showcase stage cannot proceed
```
"""

from __future__ import annotations

__all__ = [
    "CheckFailed",
    "ConfigError",
    "DependencyError",
    "DimensionError",
    "DistillError",
    "ExportError",
    "GraphError",
    "InputError",
    "IntegrityError",
    "InterfaceMismatch",
    "InvalidExpression",
    "InvalidManifest",
    "InvalidModule",
    "InvalidName",
    "InvalidUnit",
    "InvalidVersion",
    "InvalidWeights",
    "ModregError",
    "ModuleNotFound",
    "NotARegistry",
    "OfflineError",
    "PipelineError",
    "SignatureError",
    "StoreError",
    "UsageError",
    "VersionExists",
]


class ModregError(Exception):
    """Root of every error modreg raises on purpose."""


class ConfigError(ModregError, ValueError):
    """A configuration value (environment variable or option) is malformed."""


class UsageError(ConfigError):
    """Options or arguments that cannot go together or are out of bounds: fix the call.

    The CLI exits 2 on it, as on click's own usage errors.
    """


class InvalidManifest(ModregError, ValueError):
    """A manifest (``modreg.yaml``) does not validate."""


class InvalidName(InvalidManifest):
    """A module name breaks the naming rules."""


class InvalidVersion(InvalidManifest):
    """A version or version specifier cannot be parsed or is not allowed."""


class InvalidUnit(InvalidManifest):
    """A unit string is not understood by pint."""


class InvalidExpression(InvalidManifest):
    """Equation text falls outside modreg's safe arithmetic grammar."""


class DimensionError(InvalidManifest):
    """An equation's physical dimension does not match the port it defines."""


class InvalidModule(ModregError, ValueError):
    """A module directory is unsafe or inconsistent with its manifest."""


class InvalidWeights(InvalidModule):
    """A weights file is not safetensors, or its tensors do not fit the architecture."""


class ModuleNotFound(ModregError, LookupError):
    """A module reference resolves to no stored version."""


class VersionExists(ModregError, FileExistsError):
    """``name@version`` is already published with different content (versions are immutable)."""


class IntegrityError(ModregError, OSError):
    """Stored bytes do not match the digest or size they were recorded with."""


class StoreError(ModregError, OSError):
    """The registry's storage failed or refused a request (unreachable, denied, full)."""


class NotARegistry(StoreError):
    """A registry location holds other data: modreg will not write there."""


class OfflineError(StoreError):
    """The request needs the network, and offline mode is on."""


class InterfaceMismatch(ModregError, TypeError):
    """Two interfaces (or a module and its use) do not fit: ports, shapes, dtypes or units."""


class GraphError(ModregError, ValueError):
    """A hybrid graph is malformed: unknown part or port, unconnected input, cycle."""


class InputError(ModregError, ValueError):
    """Tensors passed to a built model are missing, mis-shaped or non-finite."""


class DistillError(ModregError, ValueError):
    """Distillation cannot run on the given teacher or data."""


class ExportError(ModregError, ValueError):
    """A module cannot be exported in the requested format, or the file would not run there."""


class CheckFailed(ModregError, AssertionError):
    """A CI check ran to completion and found a violation."""


class PipelineError(ModregError, RuntimeError):
    """A showcase pipeline stage cannot proceed (bad params, missing upstream output)."""


class DependencyError(ModregError, LookupError):
    """A hybrid's ``requires`` cannot be met, form a cycle, or its lock names missing bytes."""


class SignatureError(ModregError, ValueError):
    """A signature bundle or key is malformed, does not verify, or no trusted key signed."""
