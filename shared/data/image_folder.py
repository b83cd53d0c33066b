"""Class-folder image trees (``split/<class>/<file>.jpg``), from a directory or a .tar.gz.

The CIFAR-10 JPEG copy is such a tree. An archive is unpacked once into the cache folder and
each split is decoded once into a compressed uint8 array beside it, so later loads take a
fraction of a second instead of decoding 60,000 JPEGs.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .imageset import ImageSet
from .paths import cache_dir

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def unpack_once(archive: Path) -> Path:
    """Unpack ``archive`` into the cache (keyed by its name and size); return the folder."""
    target = cache_dir() / "unpacked" / f"{archive.name.split('.')[0]}-{archive.stat().st_size}"
    done = target / ".complete"
    if not done.exists():
        # Unpack into a private folder and rename it into place, so concurrent processes (DDP
        # ranks) never read a half-written tree; the first rename wins, the others discard theirs.
        partial = target.parent / f".{target.name}.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
        (partial / ".complete").write_text(md5_of(archive))
        if target.exists() and not done.exists():
            shutil.rmtree(target, ignore_errors=True)     # left by an interrupted older unpack
        try:
            os.rename(partial, target)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            if not done.exists():
                raise
    return target


def read_image_tree(root: Path, size: int | None = None, channels: int = 3) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode ``root/<class>/*`` into uint8 [N, C, H, W] and int64 labels (classes sorted by name)."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise FileNotFoundError(f"no class folders under {root}")
    images, labels = [], []
    mode = "RGB" if channels == 3 else "L"
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(file) as img:
                img = img.convert(mode)
                if size is not None and img.size != (size, size):
                    img = img.resize((size, size), Image.BICUBIC)
                array = np.asarray(img, dtype=np.uint8)
            images.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def load_class_folder_split(source: Path, split: str, description: str) -> ImageSet:
    """Load ``split`` from a class-folder tree given as a directory or a .tar.gz archive."""
    if source.is_file():
        tree = unpack_once(source)
        checksum = (tree / ".complete").read_text().strip()
        key = tree.name                       # already unique: archive name and size
    else:
        tree, checksum = source, ""
        # Two folders with the same name (the real copy, a test copy) must not share a cache entry.
        key = f"{tree.name}-{hashlib.md5(str(tree.resolve()).encode()).hexdigest()[:10]}"
    split_dir = tree / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{source} has no '{split}/' folder of class folders")
    decoded = cache_dir() / "decoded" / f"{key}-{split}.npz"
    if decoded.exists():
        with np.load(decoded) as npz:
            images, labels, classes = npz["images"], npz["labels"], list(npz["classes"])
    else:
        images, labels, classes = read_image_tree(split_dir)
        decoded.parent.mkdir(parents=True, exist_ok=True)
        # per-process temporary name: DDP ranks decode concurrently and must not share it
        tmp = decoded.with_name(f"{decoded.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, images=images, labels=labels, classes=np.asarray(classes))
        os.replace(tmp, decoded)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), [str(c) for c in classes],
                    f"{description}, {split} split", checksum)
