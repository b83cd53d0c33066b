#!/bin/bash
# Robust accuracy of fixed (t_D, t_plus) cells under PGD 8/255, the same 1000 test images (seed 1)
# and channel noise, for each checkpoint folder given; one JSON line per cell on stdout.
#   bash docs/adaptation-denoiser6/fixed-cells.sh checkpoints/cifar10 /tmp/ckD > fixed-cells.jsonl
for ck in "$@"; do
 for snr in -6 -3 0 9; do
  for cell in "20 0" "20 50" "50 50"; do
   read -r t_d t_plus <<< "$cell"
   line=$(diffusec eval --system plain --t-d "$t_d" --t-plus "$t_plus" --snr-db "$snr" --n 1000 --sampler ddim \
      --steps 5 --seed 1 --data test --source-attack pgd --eps 8/255 --json --threads 2 --checkpoints "$ck" \
      2>/dev/null | tail -1)
   echo "{\"ck\": \"$ck\", \"snr\": $snr, \"t_d\": $t_d, \"t_plus\": $t_plus, \"r\": $line}"
  done
 done
done
