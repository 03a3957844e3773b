"""The ``modreg`` MLflow flavor: save, log and load modules as MLflow models.

An MLflow model of this flavor is the module's own files and nothing else that runs code:

```
MODEL/
  MLmodel                      flavors: modreg (ref, digest, ports) and python_function
  data/module/                 the module's files (modreg.yaml, weights.safetensors, ...)
  data/parts/<ns+name>@<ver>/  a hybrid's locked parts, each a module folder
  data/signatures/<ns+name>@<ver>/<signer>.json   their signature bundles, if signed
  requirements.txt, python_env.yaml, conda.yaml
```

Nothing is pickled. Loading (``mlflow.pyfunc.load_model`` calls :func:`_load_pyfunc` with
the data folder, ``modreg.mlflow.load_model`` the same) re-hashes every folder, refuses one
whose digest differs from the MLmodel's record, validates it as ``modreg publish`` would, and
builds it with :func:`modreg.build`. A hybrid's parts are published into a throw-away
registry first, so the lockfile's digest pins are checked as in any other build.

The ``MLmodel`` file is covered by no digest, so nothing a load relies on is taken from it
but the digests it checks the folders against: ports and ranges come from the verified
manifests, folders are found by their ref, and under a trust policy
(``MODREG_TRUSTED_KEYS``) every module and part must carry a valid signature by a trusted
key, the bundles logged beside them, exactly as a pull would require.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modreg._content import LOCK_FILE
from modreg.errors import IntegrityError, InvalidModule
from modreg.mlflow._pyfunc import ModregModel
from modreg.mlflow._signature import port_metadata, signature

if TYPE_CHECKING:
    from modreg.module import Module
    from modreg.registry import Registry

__all__ = ["FLAVOR_NAME", "get_default_pip_requirements", "load_model", "save_model"]

FLAVOR_NAME = "modreg"
DATA = "data"
MODULE_DIR = "module"
PARTS_DIR = "parts"
SIGNATURES_DIR = "signatures"


def get_default_pip_requirements() -> list[str]:
    """What serving a modreg model needs: modreg itself, torch and numpy."""
    import numpy
    import torch

    import modreg

    return [
        f"modreg=={modreg.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"numpy=={numpy.__version__}",
    ]


def _source(
    target: Any, registry: Registry | None, staging: Path
) -> tuple[Module, dict[str, Module]]:
    """The module to store and, for a hybrid, every module its lockfile pins (transitively)."""
    from modreg.module import Module
    from modreg.runtime import Executable

    known: dict[str, Module] = {}
    if isinstance(target, Module):
        module = target
    elif isinstance(target, Executable):
        module = _module_of(target, staging)
        for part in getattr(target, "parts", {}).values():
            origin = getattr(part, "origin", None)
            if isinstance(origin, Module):
                known[origin.ref] = origin
    else:
        raise InvalidModule(
            f"cannot save a {type(target).__name__} as a modreg model: pass a Module "
            "(modreg.pull) or a built module (modreg.build, Hybrid.build)"
        )
    parts = _locked_parts(module, registry, known) if module.kind == "hybrid" else {}
    return module, parts


def _module_of(net: Any, staging: Path) -> Module:
    """The module a built network came from; a fresh hybrid is saved as one first."""
    from modreg.module import Module
    from modreg.runtime import HybridNet

    if isinstance(net.origin, Module):
        return net.origin
    if not isinstance(net, HybridNet):
        raise InvalidModule(
            f"{net.label} is a fresh block, not a module yet: save it with "
            "block.save(DIR, name=...) and pass modreg.Module.from_dir(DIR)"
        )
    origin, label = net.origin, net.label
    try:
        module: Module = net.save(staging / MODULE_DIR)
    finally:
        net.origin, net.label = origin, label  # saving here must not re-home the caller's net
    return module


def _locked_parts(
    module: Module, registry: Registry | None, known: dict[str, Module]
) -> dict[str, Module]:
    from modreg.registry import Registry
    from modreg.spec.graph import parse_lock

    lock = parse_lock(module.file(LOCK_FILE).read_bytes(), source=f"{module.ref}:{LOCK_FILE}")
    found: dict[str, Module] = {}
    for name, pin in lock.modules.items():
        ref = f"{name}@{pin.version}"
        part = known.get(ref) or (registry if registry is not None else Registry()).pull(ref)
        if part.digest != pin.digest:
            raise IntegrityError(
                f"{module.ref} pins {ref} with digest {pin.digest[:23]}... but the part at hand "
                f"has {part.digest[:23]}...: save the model from the registry it was built with"
            )
        found[ref] = part
        if part.kind == "hybrid":
            found |= _locked_parts(part, registry, known)
    return found


def _copy(module: Module, target: Path) -> dict[str, str]:
    """Copy a module's files into ``target`` and check the copy hashes to the same digest."""
    from modreg.module import Module

    target.mkdir(parents=True)
    for entry in module.files:
        shutil.copyfile(module.path / entry.path, target / entry.path)
    if Module.from_dir(target).digest != module.digest:
        raise IntegrityError(
            f"{module.ref}: the copy in {str(target)!r} does not hash to {module.digest[:23]}...: "
            "the source files changed while they were copied; pull the module again"
        )
    return {"ref": module.ref, "digest": module.digest}


def _copy_all(
    source: Module, parts: dict[str, Module], data: Path, registry: Registry | None
) -> dict[str, dict[str, str]]:
    """Copy the module, its parts and their signatures under ``data``; the parts' record."""
    _copy(source, data / MODULE_DIR)
    recorded = {}
    for ref, part in parts.items():
        folder = _part_folder(ref)
        recorded[ref] = {"path": folder, **_copy(part, data / folder)}
    for module in (source, *parts.values()):
        _copy_signatures(module, registry, data / SIGNATURES_DIR / _encoded(module.ref))
    return recorded


def _encoded(ref: str) -> str:
    return ref.replace("/", "+")


def _part_folder(ref: str) -> str:
    return f"{PARTS_DIR}/{_encoded(ref)}"


def _copy_signatures(module: Module, registry: Registry | None, target: Path) -> None:
    """The bundles the registry holds for exactly these bytes (none for a fresh module)."""
    from modreg.errors import ModregError
    from modreg.registry import Registry

    source = registry if registry is not None else Registry()
    try:
        record = source.resolve(module.ref)
        bundles = source.signatures(module.ref) if record.digest == module.digest else {}
    except ModregError:  # not published there, or unreachable: logged unsigned
        return
    for signer, bundle in bundles.items():
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{signer}.json").write_bytes(bundle)


def _logged_signatures(data: Path, ref: str) -> dict[str, bytes]:
    folder = data / SIGNATURES_DIR / _encoded(ref)
    if not folder.is_dir():
        return {}
    return {
        path.stem: path.read_bytes()
        for path in sorted(folder.iterdir())
        if path.suffix == ".json" and path.is_file() and not path.is_symlink()
    }


def save_model(
    module: Any,
    path: str | os.PathLike[str],
    *,
    mlflow_model: Any = None,
    registry: Registry | None = None,
    pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write ``module`` as an MLflow model directory at ``path`` (which must not exist).

    Args:
        module: a :class:`~modreg.Module` (``modreg.pull``) or a built module
            (``modreg.build``, ``Hybrid.build``; a fresh hybrid needs a name).
        path: the model directory to create.
        mlflow_model: the ``mlflow.models.Model`` to add the flavors to (``Model.log`` passes it).
        registry: where a hybrid's parts are pulled from (default: ``$MODREG_REGISTRY``).
        pip_requirements: the serving environment (default: modreg, torch, numpy pins).
        metadata: extra MLmodel metadata.

    Raises:
        InvalidModule: not a module, or a fresh block that has no module yet.
        IntegrityError: a hybrid's part differs from the digest its lockfile pins.
    """
    from modreg.tracking import import_mlflow

    import_mlflow()
    from mlflow.models import Model

    root = Path(path).resolve()
    if root.exists():
        raise InvalidModule(f"{str(root)!r} already exists: save the model to a new directory")
    try:
        with tempfile.TemporaryDirectory(prefix="modreg-mlflow-") as staging:
            source, parts = _source(module, registry, Path(staging))
            recorded = _copy_all(source, parts, root / DATA, registry)
        model = mlflow_model if mlflow_model is not None else Model()
        if metadata:
            model.metadata = {**(model.metadata or {}), **metadata}
        _write_mlmodel(model, root, source, recorded)
        _write_environment(root, pip_requirements or get_default_pip_requirements())
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)  # no half-written model left behind
        raise


def _write_mlmodel(
    mlflow_model: Any, root: Path, source: Module, recorded: dict[str, dict[str, str]]
) -> None:
    """The ``MLmodel`` file: signature, the pyfunc entry point and the modreg flavor."""
    from mlflow import pyfunc
    from mlflow.models.model import MLMODEL_FILE_NAME
    from mlflow.utils.environment import _CONDA_ENV_FILE_NAME, _PYTHON_ENV_FILE_NAME

    import modreg

    manifest = source.manifest
    # The signature holds the outputs only. The pyfunc checks every request itself (ports,
    # shapes, units' ranges) and takes forms a tensor input schema would refuse (lists,
    # DataFrames of v[0] columns). Without an input schema mlflow enforces nothing and its
    # scoring server parses all four request formats (inputs, instances, dataframe_split,
    # dataframe_records); the type-hint flag that also skips enforcement would restrict
    # the server to {"inputs": ...}. The ports with units and ranges are in the flavor.
    mlflow_model.signature = signature(manifest.outputs)
    mlflow_model.metadata = {
        **(mlflow_model.metadata or {}),
        "modreg_ref": source.ref,
        "modreg_digest": source.digest,
    }
    pyfunc.add_to_model(
        mlflow_model,
        loader_module="modreg.mlflow",
        data=DATA,
        conda_env=_CONDA_ENV_FILE_NAME,
        python_env=_PYTHON_ENV_FILE_NAME,
    )
    mlflow_model.add_flavor(
        FLAVOR_NAME,
        modreg_version=modreg.__version__,
        data=DATA,
        module=source.ref,
        kind=source.kind,
        digest=source.digest,
        inputs=port_metadata(manifest.inputs),
        outputs=port_metadata(manifest.outputs),
        parts=recorded,
    )
    mlflow_model.save(str(root / MLMODEL_FILE_NAME))


def _write_environment(root: Path, requirements: list[str]) -> None:
    """requirements.txt, conda.yaml and python_env.yaml, as mlflow's own flavors write them."""
    import yaml
    from mlflow.utils.environment import (
        _CONDA_ENV_FILE_NAME,
        _PYTHON_ENV_FILE_NAME,
        _REQUIREMENTS_FILE_NAME,
        _mlflow_conda_env,
        _PythonEnv,
    )

    (root / _REQUIREMENTS_FILE_NAME).write_text("\n".join(requirements) + "\n")
    conda = _mlflow_conda_env(additional_pip_deps=requirements)  # type: ignore[no-untyped-call]
    (root / _CONDA_ENV_FILE_NAME).write_text(yaml.safe_dump(conda, default_flow_style=False))
    _PythonEnv.current().to_yaml(str(root / _PYTHON_ENV_FILE_NAME))  # type: ignore[no-untyped-call]


def _flavor_config(model_root: Path) -> dict[str, Any]:
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    meta = Model.load(str(model_root / MLMODEL_FILE_NAME))
    if FLAVOR_NAME not in meta.flavors:
        raise InvalidModule(
            f"{str(model_root)!r} is not a modreg model (flavors: {sorted(meta.flavors)}): "
            "log it with modreg.mlflow.log_model"
        )
    config: dict[str, Any] = meta.flavors[FLAVOR_NAME]
    return config


def _verified(folder: Path, ref: str, digest: str) -> Module:
    """The module in ``folder``, validated, if its files hash to the recorded digest."""
    from modreg.module import Module

    module = Module.from_dir(folder)
    if module.digest != digest or module.ref != ref:
        raise IntegrityError(
            f"the MLflow model's copy of {ref} hashes to {module.digest[:23]}... "
            f"({module.ref}) but the model records {digest[:23]}...: its files were changed "
            "after logging; log the module again"
        )
    return module


def _build(model_root: Path, config: dict[str, Any]) -> ModregModel:
    from modreg.registry import Registry
    from modreg.runtime import build

    data = model_root / DATA  # the layout is ours: no path is taken from the MLmodel
    module = _verified(data / MODULE_DIR, str(config["module"]), str(config["digest"]))
    parts = {
        str(ref): _verified(data / _part_folder(str(ref)), str(ref), str(entry["digest"]))
        for ref, entry in dict(config.get("parts") or {}).items()
    }
    with tempfile.TemporaryDirectory(prefix="modreg-mlflow-parts-") as scratch:
        registry = Registry(Path(scratch) / "registry")  # its pulls apply the trust policy
        if registry.trust is not None:
            registry.trust.enforce(module, module.path, _logged_signatures(data, module.ref))
        for ref, part in parts.items():
            registry.publish(part.path)
            for signer, bundle in _logged_signatures(data, ref).items():
                registry.add_signature(ref, signer, bundle)
        net = build(module, registry=registry)
    net.eval()
    manifest = module.manifest  # verified above; the MLmodel's copy of the ports is not
    return ModregModel(net, module, dict(manifest.inputs), dict(manifest.outputs))


def _load_pyfunc(data_path: str) -> ModregModel:
    """Entry point of ``mlflow.pyfunc.load_model`` (``loader_module: modreg.mlflow``)."""
    model_root = Path(data_path).resolve().parent
    return _build(model_root, _flavor_config(model_root))


def load_model(model_uri: str, dst_path: str | None = None) -> ModregModel:
    """Load a modreg MLflow model (``models:/NAME/1``, ``runs:/ID/name``, a path), verified.

    Returns:
        A :class:`ModregModel`: ``predict`` by port name, the built torch module as ``net``.

    Raises:
        IntegrityError: a stored module's files no longer hash to the recorded digest.
        InvalidModule: the model is not of the modreg flavor, or its files do not validate.
    """
    from modreg.tracking import import_mlflow

    import_mlflow()
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    local = Path(_download_artifact_from_uri(artifact_uri=model_uri, output_path=dst_path))
    return _build(local, _flavor_config(local))
