#!/usr/bin/env bash
# Profile the demo bundle on this machine (per-stage latency, bytes per image, energy where a
# sensor or a model says so), then turn the results into a report with figures and tables.
#
#   bash examples/profile_and_report.sh [OUT_DIR]      (default: a new temporary folder)
#
# Runs offline in about 20 s on 2 cores. Needs the venv's `sc2deploy` on PATH
# (. .venv/bin/activate). On a device, the same `profile` runs over ssh with --host USER@HOST.
set -euo pipefail

command -v sc2deploy >/dev/null || {
    echo "sc2deploy is not on PATH: run 'make venv && . .venv/bin/activate' first" >&2; exit 1; }

out="${1:-$(mktemp -d -t sc2deploy-example.XXXXXX)}"
mkdir -p "$out"

sc2deploy export demo --out "$out/demo-bundle" --force

# 5 measured images after 1 warm-up (the default is 50 after 5); LoRa at 37.5 kbit/s as the
# link model, so the results also hold each image's airtime; no JPEG/WebP baselines.
sc2deploy profile "$out/demo-bundle" --warmup 1 --runs 5 --link lora-ideal-37.5k \
    --no-baselines -o "$out/profile.json"

# The report: report.md / report.html with PNG, PDF and SVG figures and the tables as files.
sc2deploy report "$out/profile.json" -o "$out/report"

echo "results: $out/profile.json"
echo "report: $out/report/report.html"
