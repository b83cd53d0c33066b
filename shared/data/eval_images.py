"""The images an evaluation runs on: the preset's test split, or the embedded sample without it.

Every in-process measurement (``diffusec eval``, ``report``, the agent's grid), the link's demo
and benchmarks and the sender take their images from here, so that the same ``n`` and ``seed``
pick the same images everywhere.
"""
from __future__ import annotations

import sys
from typing import Callable

from ..presets import get_preset
from .heldout import split_heldout
from .imageset import ImageSet
from .paths import DataNotFoundError
from .registry import load_split
from .sample import load_sample


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)   # flushed: in order with the lines around it


def load_eval_data(preset_name: str, data_root: str | None, image_set: str, n: int | None, seed: int,
                   note: Callable[[str], None] = _to_stderr) -> ImageSet:
    """The first ``n`` images (all for None) of a ``seed``-permutation of the chosen image set.

    ``image_set``: ``test`` the preset's test split (DataNotFoundError if absent), ``sample`` the
    embedded sample, ``auto`` the test split where found, else the sample (saying so via ``note``),
    ``heldout`` the training split's held-out images (:mod:`shared.data.heldout`; no model trained
    on them, and not the test split: for choosing things, such as the agent's grid).
    """
    dataset = get_preset(preset_name).dataset
    if image_set == "heldout":
        data = split_heldout(load_split(dataset, "train", data_root))[1]
    elif image_set == "sample":
        data = load_sample(dataset)
    else:
        try:
            data = load_split(dataset, "test", data_root)
        except DataNotFoundError as err:
            if image_set == "test":
                raise
            data = load_sample(dataset)
            what = str(err).splitlines()[0].removesuffix(" Tried:")
            note(f"note: {what} (`diffusec data info` lists the paths tried); using the {data.description}")
    return data.subset(n, seed)
