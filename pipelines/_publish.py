"""Publishing from a stage: all modules or none, and a deterministic key linking runs."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modreg.errors import PipelineError
from modreg.module import Module
from modreg.registry import PublishResult, Registry


def project_registry() -> Registry:
    """The registry of the showcase (``$MODREG_REGISTRY``, else ``.modreg/registry``)."""
    return Registry(os.environ.get("MODREG_REGISTRY") or ".modreg/registry")


def publish_all(modules: Sequence[Module], registry: Registry | None = None) -> list[PublishResult]:
    """Publish every module, or none when any version already holds other bytes.

    Each version is checked first, so a conflict leaves the registry exactly as it was
    (a publish that fails later for another reason is still atomic per module).
    """
    registry = registry or project_registry()
    for module in modules:
        record = registry.record(module.name, module.version)
        if record is not None and record.digest != module.digest:
            raise PipelineError(
                f"registry {registry.location} already holds {module.ref} with other "
                f"content: bump the version in params.yaml or use a fresh registry"
            )
    return [registry.publish(module.path) for module in modules]


def run_key(stage: str, params: Any, inputs: Sequence[Path]) -> str:
    """A deterministic id of a stage run: its own params and the bytes of its inputs.

    Module provenance records this key (identical runs give identical module digests) and
    the MLflow run is tagged with it (``tags.modreg_run_key``), so each finds the other.
    """
    digest = hashlib.sha256(json.dumps([stage, params], sort_keys=True).encode())
    for path in inputs:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]
