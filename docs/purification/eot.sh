#!/usr/bin/env bash
# The adaptive (EOT) figure beside the paper-protocol one, on one checkpoint folder (default: the shipped
# checkpoints/cifar10): plain at 3 dB with t_D = 20 and at 15 dB with t_D = 60, n = 200, DDPM purifier.
# Data: CIFAR-10 (JPEG q75 copy), test split. Writes one JSON line per command to OUT (default stdout).
# Usage: [DIFFUSEC="python docs/purification/airbench96_classifier.py"] bash docs/purification/eot.sh [CHECKPOINTS] [OUT]
# (DIFFUSEC: the command to run instead of `diffusec`, e.g. a script that changes the preset first)
set -euo pipefail
ck=${1:-checkpoints/cifar10}
out=${2:-/dev/stdout}
export DIFFUSEC_NO_PROGRESS=1
read -r -a diffusec <<< "${DIFFUSEC:-diffusec}"
run() { shift; echo "+ ${diffusec[*]} $*" >&2; "${diffusec[@]}" "$@" 2>/dev/null | tail -1 >> "$out"; }
pgd=(--source-attack pgd --eps 8/255 --attack-steps 10)
for point in "3 20" "15 60"; do
    set -- $point
    run diffusec eval --system plain --snr-db "$1" --t-d "$2" --n 200 --data test "${pgd[@]}" --checkpoints "$ck" --json
    run diffusec eval --system plain --snr-db "$1" --t-d "$2" --n 200 --data test "${pgd[@]}" --adaptive --eot-samples 4 \
        --batch 50 --checkpoints "$ck" --json
done
