#!/usr/bin/env bash
# The showcase: publish the example modules to the project-local registry and pull them back.
# (The full DVC pipeline -- simulate, train, distill, validate, reuse -- replaces this demo.)
set -euo pipefail
cd "$(dirname "$0")/.."
export MODREG_HOME="${MODREG_HOME:-$PWD/.modreg}"
for module in modules/*/; do
  modreg publish "$module"
done
modreg list
modreg show physics/drag
modreg pull 'physics/gravity@>=1,<2' --to .modreg/deps/gravity
modreg verify
