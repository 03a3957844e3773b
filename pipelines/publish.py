"""Stage 5, publish: the validated equations become new versions of the shared physics library.

The project's own library (``modules/``) is published first (a no-op when already there).
Then:

- ``physics/drag``: the library's drag law with the drag coefficient recovered from the
  baseball (``C_d = k / (rho A / 2)``) replacing its old value.
- ``physics/gravity``: the distilled near-surface field ``g = (0, 0, -g)``. Its interface
  differs from Newton's two-body law, version 1, so the interface policy demands a major
  version: users pinned to ``>=1,<2`` keep Newton's law.

Each version is the smallest bump the interface policy (``modreg check interface``) allows
over the newest published version, and carries provenance back to its teacher network,
the distilled module and the run key. All or nothing: a conflict publishes neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from packaging.version import Version
from pydantic import BaseModel, ConfigDict

import modreg
from modreg.check import Bump, compare
from modreg.errors import ModuleNotFound
from modreg.spec.manifest import MANIFEST_FILE, Manifest, dump_manifest, parse_manifest
from pipelines._common import load_params, parse_section, require, stage, write_json
from pipelines._mlflow_models import register
from pipelines._publish import project_registry, publish_all, run_key
from pipelines.distill import recovered

STAGED = Path("published")


class PublishParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    library: list[str]
    drag: str
    gravity: str


def _bumped(old: Version, bump: Bump) -> str:
    major, minor, patch = old.release[:3]
    if bump >= Bump.MAJOR:
        return f"{major + 1}.0.0"
    if bump == Bump.MINOR:
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def next_version(registry: modreg.Registry, manifest: Manifest) -> str:
    """The smallest version the interface policy allows after the newest published one."""
    try:
        _, newest = registry.manifest(f"{manifest.name}@latest")
    except ModuleNotFound:
        return manifest.version
    report = compare(newest, manifest.model_copy(update={"version": newest.version}))
    if not report.changes:
        return newest.version  # identical interface and body: nothing new to publish
    return _bumped(Version(newest.version), max(report.required, Bump.PATCH))


def _write(directory: Path, data: dict[str, Any]) -> modreg.Module:
    directory.mkdir(parents=True, exist_ok=True)
    manifest = parse_manifest(yaml.safe_dump(data, sort_keys=False))
    (directory / MANIFEST_FILE).write_text(dump_manifest(manifest))
    return modreg.Module.from_dir(directory)


def staged(
    name: str, base: dict[str, Any], registry: modreg.Registry, folder: str
) -> modreg.Module:
    """Write ``base`` as module ``name`` at the policy's next version under ``published/``."""
    draft = _write(STAGED / folder, {**base, "name": name})
    version = next_version(registry, draft.manifest)
    return _write(STAGED / folder, {**base, "name": name, "version": version})


@stage
def main() -> None:
    params = load_params()
    p = parse_section(PublishParams, params, "publish")
    registry = project_registry()
    publish_all([modreg.Module.from_dir(path) for path in p.library], registry)
    gravity = modreg.Module.from_dir(require("distilled/gravity", "distill"))
    drag = modreg.Module.from_dir(require("distilled/drag", "distill"))
    require("metrics/validate.json", "validate")
    found = recovered(gravity, drag, params["ball"])
    key = run_key(
        "publish", params["publish"], [gravity.path / MANIFEST_FILE, drag.path / MANIFEST_FILE]
    )
    _, library_drag = registry.manifest(p.drag)
    drag_data = library_drag.model_dump(mode="json", exclude_defaults=True)
    drag_data["constants"]["C_d"]["value"] = round(found["drag_cd_recovered"], 6)
    drag_data["provenance"] = {
        "distilled_from": str(drag.manifest.provenance.get("distilled_from")),
        "teacher_digest": str(drag.manifest.provenance.get("teacher_digest")),
        "distilled_digest": drag.digest,
        "mlflow_run_key": key,
        "stage": "publish",
    }
    gravity_data = gravity.manifest.model_dump(mode="json", exclude_defaults=True)
    gravity_data["summary"] = "Uniform gravitational field near the Earth's surface (distilled)"
    gravity_data["provenance"] = {
        **gravity_data.get("provenance", {}),
        "distilled_digest": gravity.digest,
        "mlflow_run_key": key,
        "stage": "publish",
    }
    modules = [
        staged(library_drag.name, drag_data, registry, "drag"),
        staged(p.gravity, gravity_data, registry, "gravity"),
    ]
    results = publish_all(modules, registry)
    with modreg.Tracker(
        "showcase", "publish", tags={"stage": "publish", "modreg_run_key": key}
    ) as run:
        run.set_tags({f"module.{r.name}": f"{r.version} {r.digest}" for r in results})
        run.log_metrics({"drag_cd_published": drag_data["constants"]["C_d"]["value"]})
        # Registered models (not DVC metrics: their version numbers depend on the store).
        served = register([registry.pull(r.ref) for r in results], registry)
        run.set_tags({f"mlflow_model.{s.model}": s.uri for s in served})
    write_json(
        Path("metrics/publish.json"),
        {r.name: {"version": r.version, "digest": r.digest} for r in results},
    )
    for result in results:
        print(f"published {result.ref} {result.digest}")
    for model in served:
        state = "registered" if model.created else "already registered"
        print(f"{state} {model.uri} ({model.ref})")


if __name__ == "__main__":
    main()
