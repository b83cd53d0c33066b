"""Row J3 of docs/purification.md: the shipped airbench96 classifier with the mirror pair only, with
airbench96's 6 test-time views (as shipped), the airbench94 classifier shipped before it (I3), and the
logit mean of the two (an ensemble). One JSON line per image set (first N images, seed 0).

    git show 4a33ebe:checkpoints/cifar10/classifier.pt > I3/classifier.pt   # and classifier.json
    python docs/purification/airbench96_variants.py --previous I3 heldout:2000 test:2000 test:10000
"""
import argparse
import json
from pathlib import Path

import torch

from shared import presets
from shared.checkpoints import load_checkpoint
from shared.data.eval_images import load_eval_data
from shared.models.classifier import Classifier
from shared.pipeline import Pipeline

from classifier_variants import logits_of

AIRBENCH94 = presets.ClassifierConfig(kind="airbench", widths=(128, 384, 384), test_time_flip=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", help="IMAGE_SET:N, IMAGE_SET one of heldout, test")
    parser.add_argument("--previous", required=True, help="folder with the airbench94 classifier.pt (I3)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    shipped = Pipeline.load("cifar10", parts=("classifier",)).classifier
    previous = Classifier(AIRBENCH94).eval()
    previous.load_state_dict(load_checkpoint(Path(args.previous), "classifier", "cifar10"))
    for spec in args.sets:
        image_set, n = spec.split(":")
        n = int(n)
        data = load_eval_data("cifar10", None, image_set, n, 0)
        labels = data.labels[:n]

        def accuracy(logits: torch.Tensor) -> float:
            return round((logits.argmax(1) == labels).float().mean().item(), 4)
        six_views = logits_of(shipped, data, n)
        shipped.test_time_translate = False
        mirror = logits_of(shipped, data, n)
        shipped.test_time_translate = True
        before = logits_of(previous, data, n)
        print(json.dumps({"data": data.description, "mirror_pair": accuracy(mirror), "six_views": accuracy(six_views),
                          "previous": accuracy(before), "ensemble": accuracy(mirror + before)}), flush=True)


if __name__ == "__main__":
    main()
