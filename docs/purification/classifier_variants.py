"""Rows I6 and I7 of docs/purification.md: cheap ways to a stronger receiver classifier, measured.

For each image set (``heldout``: the training split's 2000 held-out images, to choose by; ``test``:
the bar's split), the first N images (seed 0) are classified by
- ``shipped``: the shipped classifier (airbench's mirror test-time augmentation, 2 views);
- ``translate``: the same weights with ``test_time_translate`` (airbench's level 2: 6 views);
- ``other``: the classifier in OTHER (another checkpoint folder), if given;
- ``ensemble``: the mean of ``shipped``'s and ``other``'s logits.
One JSON line per image set.

    python docs/purification/classifier_variants.py [--other DIR] [--n N] heldout test
"""
import argparse
import json

import torch

from shared.data.eval_images import load_eval_data
from shared.pipeline import Pipeline


@torch.no_grad()
def logits_of(classifier: torch.nn.Module, data, n: int, batch: int = 250) -> torch.Tensor:
    """[n, classes] eval-mode logits for the first n images of ``data``."""
    return torch.cat([classifier(data.as_float(slice(i, min(i + batch, n)))) for i in range(0, n, batch)])


def measure(image_set: str, n: int, shipped: torch.nn.Module, other: torch.nn.Module | None) -> dict:
    data = load_eval_data("cifar10", None, image_set, n, 0)
    labels = data.labels[:n]

    def accuracy(logits: torch.Tensor) -> float:
        return round((logits.argmax(1) == labels).float().mean().item(), 4)

    row = {"data": data.description}
    base = logits_of(shipped, data, n)
    row["shipped"] = accuracy(base)
    shipped.test_time_translate = True
    row["translate"] = accuracy(logits_of(shipped, data, n))
    shipped.test_time_translate = False
    if other is not None:
        second = logits_of(other, data, n)
        row["other"], row["ensemble"] = accuracy(second), accuracy(base + second)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image_sets", nargs="+", choices=("heldout", "test"))
    parser.add_argument("--other", help="a second checkpoint folder (its classifier.pt) for the ensemble")
    parser.add_argument("--n", type=int, default=2000, help="images per set (default 2000)")
    args = parser.parse_args()
    shipped = Pipeline.load("cifar10", parts=("classifier",)).classifier
    other = Pipeline.load("cifar10", args.other, parts=("classifier",)).classifier if args.other else None
    for image_set in args.image_sets:
        print(json.dumps(measure(image_set, args.n, shipped, other)), flush=True)


if __name__ == "__main__":
    main()
