"""`diffusec ...` with the cifar10 preset's receiver classifier at airbench widths 128/384/384 and, with
--retrain-images N, N receiver outputs per retraining round. Used for rows G-I of docs/purification.md,
made while the preset's classifier was 64/256/256 (2.0 M parameters); the preset is now 128/384/384
itself (row I3 shipped), so without --retrain-images this is plain `diffusec`, kept for those rows:

    python docs/purification/wide_classifier.py train classifier --checkpoints W --epochs 15
    python docs/purification/wide_classifier.py train retrain --checkpoints W
    python docs/purification/wide_classifier.py eval --system classifier --n 2000 --checkpoints W --json
"""
import dataclasses
import sys

from shared import presets


def main(argv: list[str]) -> None:
    retrain_images = None
    if "--retrain-images" in argv:
        at = argv.index("--retrain-images")
        retrain_images = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    base = presets.get_preset("cifar10")
    train = base.train if retrain_images is None else dataclasses.replace(base.train, retrain_images=retrain_images)
    presets.PRESETS["cifar10"] = dataclasses.replace(
        base, classifier=dataclasses.replace(base.classifier, widths=(128, 384, 384)), train=train)
    from diffusec.cli import main as diffusec
    diffusec(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
