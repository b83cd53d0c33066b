"""`diffusec ...` with the cifar10 preset's receiver classifier built and trained as airbench96 (its
groups of three convs with a residual pair, 4-pixel translation, 12-pixel Cutout, lr 9.0, wd 0.012,
warm-up 10% and decay to 0; shared/training/airbench.py) at the preset's widths, or --widths A,B,C.
Row J of docs/purification.md:

    python docs/purification/airbench96_classifier.py train classifier --checkpoints J --epochs 18
    python docs/purification/airbench96_classifier.py eval --system classifier --n 2000 --checkpoints J --json
"""
import dataclasses
import sys

from shared import presets


def main(argv: list[str]) -> None:
    base = presets.get_preset("cifar10")
    widths = base.classifier.widths
    if "--widths" in argv:
        at = argv.index("--widths")
        widths = tuple(int(w) for w in argv[at + 1].split(","))
        argv = argv[:at] + argv[at + 2:]
    classifier = dataclasses.replace(base.classifier, widths=widths, residual_pair=True)
    presets.PRESETS["cifar10"] = dataclasses.replace(
        base, classifier=classifier, train=dataclasses.replace(base.train, classifier_recipe="airbench96"))
    from diffusec.cli import main as diffusec
    diffusec(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
