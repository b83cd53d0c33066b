"""IDX files (MNIST, Fashion-MNIST), plain or gzipped, and MNIST-style split folders.

IDX header: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then one big-endian uint32 per
dimension; the values follow, big-endian, in C order.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from .download import fetch
from .image_folder import md5_of
from .imageset import ImageSet

IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"

DIGITS = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# File-name prefix of each split in MNIST-style folders.
SPLIT_PREFIX = {"train": "train", "test": "t10k"}

# The PyTorch project's mirror: yann.lecun.com, the original host, often refuses downloads.
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {                               # md5 of the .gz files as served by the mirror
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not, told apart by content) into an array in native byte order."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an uncompressed IDX file; ValueError if the header does not fit."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{name} is not an IDX file (header {raw[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(f"{name}: {len(raw)} bytes, but an IDX array of shape {shape} needs {expected}")
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))       # native order, and a writable copy


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in .gz (tests, tooling)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    Path(path).write_bytes(gzip.compress(body) if str(path).endswith(".gz") else body)


def _find(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists (plain first)."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def idx_split_files(folder: Path, split: str) -> tuple[Path, Path]:
    """The (images, labels) IDX files of ``split``; FileNotFoundError naming what was looked for."""
    if split not in SPLIT_PREFIX:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    stems = [f"{SPLIT_PREFIX[split]}-images-idx3-ubyte", f"{SPLIT_PREFIX[split]}-labels-idx1-ubyte"]
    found = [_find(folder, stem) for stem in stems]
    if None in found:
        missing = [f"{stem}[.gz]" for stem, path in zip(stems, found) if path is None]
        raise FileNotFoundError(f"no {' or '.join(missing)} in {folder}")
    return found[0], found[1]


def classes_for(folder: Path) -> list[str]:
    """Class names, told from the folder's name: Fashion-MNIST's ten, else the digits."""
    name = folder.name.lower()
    return list(FASHION_CLASSES) if "fashion" in name or "fmnist" in name else list(DIGITS)


def load_idx_split(folder: Path, split: str, description: str) -> ImageSet:
    """Load ``split`` of an MNIST-style folder: uint8 images [N, 1, 28, 28], int64 labels [N].

    The checksum is the md5 of the images file as stored (the .gz when gzipped).
    """
    images_path, labels_path = idx_split_files(folder, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected labels [N], got shape {labels.shape}")
    return ImageSet(torch.from_numpy(images[:, None]), torch.from_numpy(labels.astype(np.int64)),
                    classes_for(folder), f"{description}, {split} split", md5_of(images_path))


def download_mnist(dest: Path, base_url: str = MNIST_MIRROR, progress: bool = True) -> Path:
    """Download the four MNIST .gz files (about 11 MiB) into the folder ``dest``; return it.

    Each file is checked against :data:`MNIST_MD5` before it is put in place.
    """
    hint = ("Alternatively fetch the four files (" + ", ".join(MNIST_MD5) + ") on another machine and "
            "put them in a folder named mnist/ inside a folder you pass as --data-root.")
    base = base_url.rstrip("/") + "/"
    for name, md5 in MNIST_MD5.items():
        fetch(base + name, Path(dest) / name, md5, progress=progress, manual_hint=hint)
    return Path(dest)
