"""The polluted image store: test images after a non-adaptive source attack, crafted once, kept 8-bit.

The paper's attacker pollutes the sender's image store once (white-box on the classifier alone);
every SNR, system and PNR that shares the classifier then sends the same polluted images. On the
six-view airbench96 classifier crafting PGD over 1000 images takes about 10 minutes on 2 cores, so
a store is also kept on disk (``cache_dir()/polluted-stores``), keyed on everything it depends on:
the classifier's weights, the images and labels, the attack, the seed and the batch size (the
random starts are drawn batch by batch from one generator).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ..data import ImageSet, cache_dir
from .source import SourceAttack, pollute

STORE_FOLDER = "polluted-stores"


def default_folder() -> Path:
    """Where stores are cached: ``cache_dir()/polluted-stores`` (``DIFFUSEC_CACHE`` or ~/.cache/diffusec)."""
    return cache_dir() / STORE_FOLDER


def polluted_store(pipeline, data: ImageSet, attack: SourceAttack, seed: int, batch: int) -> ImageSet:
    """``data`` polluted by the non-adaptive ``attack`` on ``pipeline``'s classifier alone -> an ImageSet of
    uint8 [N, C, H, W] images within ``attack.eps`` of the originals, labels and classes unchanged."""
    if attack.adaptive:
        raise ValueError("an adaptive attack depends on the state it is crafted at: it has no single store")
    generator = torch.Generator().manual_seed(seed)
    images = pollute(attack, pipeline, data.images, data.labels, snr_db=0.0, t_d=0, t_plus=0, system="classifier",
                     batch=batch, generator=generator)
    return _as_store(images, data, attack)


def store_key(classifier: torch.nn.Module, data: ImageSet, attack: SourceAttack, seed: int, batch: int) -> str:
    """md5 over what a store depends on: classifier weights, images and labels, attack, seed, batch."""
    digest = hashlib.md5()
    for name, tensor in sorted(classifier.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    digest.update(data.images.numpy().tobytes())
    digest.update(data.labels.numpy().tobytes())
    digest.update(json.dumps({"attack": attack.to_dict(), "seed": seed, "batch": batch}, sort_keys=True).encode())
    return digest.hexdigest()


def cached_polluted_store(pipeline, data: ImageSet, attack: SourceAttack, seed: int, batch: int,
                          folder: Path | None = None) -> ImageSet:
    """:func:`polluted_store`, read from ``folder`` (default :func:`default_folder`) when crafted before.

    A file that cannot be read or does not match is crafted again and replaced (atomic write).
    """
    folder = Path(folder) if folder is not None else default_folder()
    path = folder / f"{store_key(pipeline.classifier, data, attack, seed, batch)}.pt"
    if path.exists():
        try:
            images = torch.load(path, weights_only=True)["images"]
            if images.shape == data.images.shape and images.dtype == torch.uint8:
                return _as_store(images, data, attack)
        except (OSError, RuntimeError, KeyError, TypeError, EOFError):
            pass
    store = polluted_store(pipeline, data, attack, seed, batch)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"images": store.images.clone(), "attack": attack.to_dict(), "seed": seed, "batch": batch}, tmp)
    os.replace(tmp, path)
    return store


def _as_store(images_u8: torch.Tensor, data: ImageSet, attack: SourceAttack) -> ImageSet:
    return ImageSet(images_u8, data.labels, data.classes, f"{data.description}, {attack.kind.upper()}-polluted",
                    data.checksum)
