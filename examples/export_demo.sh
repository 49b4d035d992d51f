#!/usr/bin/env bash
# Export the bundled demo student to a bundle, then verify and describe it.
#
#   bash examples/export_demo.sh [OUT_DIR]      (default: a new temporary folder)
#
# The demo student ships inside the package (sc2deploy/data/demo_ladder), so this runs
# offline; about 10 s on 2 cores. Needs the venv's `sc2deploy` on PATH (. .venv/bin/activate).
set -euo pipefail

command -v sc2deploy >/dev/null || {
    echo "sc2deploy is not on PATH: run 'make venv && . .venv/bin/activate' first" >&2; exit 1; }

out="${1:-$(mktemp -d -t sc2deploy-example.XXXXXX)}"
mkdir -p "$out"
bundle="$out/demo-bundle"

# Export: the head as ONNX, the prior's tables, the server side's decoder and tail. It fails
# unless onnxruntime gives torch's symbols on the sample images. --force replaces a bundle
# left by an earlier run in the same folder.
sc2deploy export demo --out "$bundle" --force

# `info` checks every file against the manifest's hashes, then describes the bundle.
sc2deploy info "$bundle"

# The manifest as JSON, for scripts: here the head's input and latent shapes.
sc2deploy info --json "$bundle" | python3 -c '
import json, sys
model = json.load(sys.stdin)["model"]
print("input", model["input"]["shape"], "-> latent", model["latent"]["shape"])'

echo "bundle: $bundle"
