#!/usr/bin/env bash
# The issue's "Done when" figures on one checkpoint folder (default: the shipped checkpoints/cifar10).
# Data: CIFAR-10 (JPEG q75 copy), test split. Writes one JSON line per command to OUT (default stdout).
# Usage: [DIFFUSEC="python docs/purification/airbench96_classifier.py"] bash docs/purification/done-when.sh [CHECKPOINTS] [OUT]
# (DIFFUSEC: the command to run instead of `diffusec`, e.g. a script that changes the preset first)
set -euo pipefail
ck=${1:-checkpoints/cifar10}
out=${2:-/dev/stdout}
export DIFFUSEC_NO_PROGRESS=1
read -r -a diffusec <<< "${DIFFUSEC:-diffusec}"
run() { shift; echo "+ ${diffusec[*]} $*" >&2; "${diffusec[@]}" "$@" 2>/dev/null | tail -1 >> "$out"; }
run diffusec eval --system classifier --n 2000 --checkpoints "$ck" --json
run diffusec eval purification --t 60 --n 500 --checkpoints "$ck" --json
run diffusec eval --system plain --t-d 60 --t-plus 0 --snr-db 15 --n 500 --checkpoints "$ck" --json
run diffusec eval --system plain --t-d 60 --t-plus 0 --snr-db 15 --n 500 --source-attack pgd --eps 8/255 \
    --attack-steps 10 --checkpoints "$ck" --json
