#!/usr/bin/env bash
# Re-measures the figures of docs/baselines.md ("Measured" sections): jpeg-ldpc on cifar10 (adaptive,
# fixed modes, PGD) beside vit and plain on the same 200 images, and jpeg-ldpc / vit on fmnist.
# Data: CIFAR-10 (JPEG q75 copy) and Fashion-MNIST (Debian's dataset-fashion-mnist), test splits, seed 0.
# Writes one JSON line per command to OUT (default stdout); the command runs with DIFFUSEC_NO_PROGRESS.
# Usage: bash docs/baselines/measure.sh [OUT]
set -euo pipefail
out=${1:-/dev/stdout}
export DIFFUSEC_NO_PROGRESS=1
run() { echo "+ $*" >&2; "$@" 2>/dev/null | tail -1 >> "$out"; }
cifar=(--n 200 --data test --json)
run diffusec eval --system classifier "${cifar[@]}"
for snr in -6 0 3 9 18; do
    run diffusec eval --system jpeg-ldpc --snr-db "$snr" "${cifar[@]}"
done
run diffusec eval --system jpeg-ldpc --snr-db 18 --link-mode qpsk-1/2 "${cifar[@]}"
run diffusec eval --system jpeg-ldpc --snr-db 15 --link-mode 64qam-5/6 "${cifar[@]}"
for snr in 18 9; do
    run diffusec eval --system jpeg-ldpc --snr-db "$snr" --source-attack pgd --eps 8/255 "${cifar[@]}"
done
for system in vit plain; do
    for snr in -6 0 3 9 18; do
        run diffusec eval --system "$system" --snr-db "$snr" "${cifar[@]}"
    done
done
fmnist=(--preset fmnist --n 500 --data test --json)
run diffusec eval --system classifier "${fmnist[@]}"
for system in jpeg-ldpc vit; do
    for snr in 5 9 12 15 18; do
        run diffusec eval --system "$system" --snr-db "$snr" "${fmnist[@]}"
    done
done
