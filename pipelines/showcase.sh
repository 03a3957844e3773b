#!/usr/bin/env bash
# The showcase: the whole loop, reproducible with DVC and tracked in MLflow (sqlite:///mlflow.db).
# Modules go to the project registry (.modreg/registry); data to the local DVC remote (.dvc-remote).
set -euo pipefail
cd "$(dirname "$0")/.."
export MODREG_HOME="${MODREG_HOME:-$PWD/.modreg}"
export MODREG_REGISTRY="${MODREG_REGISTRY:-$MODREG_HOME/registry}"
dvc repro
dvc push -q || echo "note: dvc push to the local remote failed; outputs stay in the cache" >&2
modreg list
python -m pipelines.summary
