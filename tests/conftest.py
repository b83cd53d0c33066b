"""Shared fixtures: a tiny CIFAR-shaped class-folder data root and an isolated cache/env."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Two training jobs may share this machine's cores: keep every test single-threaded.
torch.set_num_threads(1)

NUM_CLASSES = 10
TRAIN_PER_CLASS = 30
TEST_PER_CLASS = 3
IMAGE_SIZE = 32


def write_class_tree(root: Path, per_class: dict[str, int], size: int = IMAGE_SIZE, seed: int = 0,
                     classes: int = NUM_CLASSES, name: str = "cifar10-jpeg-q75") -> Path:
    """Write ``root/<name>/<split>/<class>/*.png``: per class a distinct mean colour plus noise."""
    rng = np.random.default_rng(seed)
    tree = root / name
    for split, count in per_class.items():
        for label in range(classes):
            folder = tree / split / f"class{label:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            base = rng.integers(0, 256, size=3)
            for i in range(count):
                pixels = np.clip(base + rng.normal(0, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "RGB").save(folder / f"{i:03d}.png")
    return tree


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """A data root holding ``cifar10-jpeg-q75/{train,test}/<10 classes>/*.png`` (300 + 30 images)."""
    root = tmp_path_factory.mktemp("data")
    write_class_tree(root, {"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS})
    return root


@pytest.fixture(autouse=True, scope="session")
def private_store_cache(tmp_path_factory):
    """Polluted image stores crafted by in-process tests go to a tmp folder, not the user's cache."""
    import shared.attacks.store as store

    folder = tmp_path_factory.mktemp("polluted-stores")
    original, store.default_folder = store.default_folder, lambda: folder
    yield folder
    store.default_folder = original


@pytest.fixture
def isolated_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Point the cache and checkpoint defaults at tmp folders; no progress bars."""
    env = {"DIFFUSEC_CACHE": str(tmp_path / "cache"), "DIFFUSEC_NO_PROGRESS": "1",
           "DIFFUSEC_CHECKPOINTS": str(tmp_path / "default-checkpoints")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DIFFUSEC_DATA", raising=False)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture(scope="module")
def untrained_checkpoints(tmp_path_factory) -> Path:
    """cifar10-preset models with random weights, saved the way training saves them (one folder per module)."""
    from link_support import make_untrained_checkpoints

    return make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))
