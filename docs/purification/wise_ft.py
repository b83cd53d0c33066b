"""WiSE-FT after the fact: OUT/classifier.pt = (1 - a) * START + a * TUNED (shared.training.retrain.
interpolate_weights), with links to TUNED's codec and denoiser so that OUT is a checkpoint folder.
Rows H of docs/purification.md; `train retrain` does the same in one run with
TrainConfig.retrain_weight_average = a.

    python docs/purification/wise_ft.py START/classifier.pt TUNED/classifier.pt 0.5 OUT
"""
import os
import sys

import torch

from shared.training.retrain import interpolate_weights


def main(start_path: str, tuned_path: str, alpha: str, out: str) -> None:
    start = torch.load(start_path, map_location="cpu", weights_only=True)
    tuned = torch.load(tuned_path, map_location="cpu", weights_only=True)
    os.makedirs(out, exist_ok=True)
    weights = interpolate_weights(start["state_dict"], tuned["state_dict"], float(alpha))
    torch.save({**tuned, "state_dict": weights}, os.path.join(out, "classifier.pt"))
    source = os.path.dirname(os.path.abspath(tuned_path))
    for name in ("codec.pt", "codec.json", "denoiser.pt", "denoiser.json", "classifier.json"):
        if not os.path.exists(os.path.join(out, name)):
            os.symlink(os.path.realpath(os.path.join(source, name)), os.path.join(out, name))


if __name__ == "__main__":
    main(*sys.argv[1:])
