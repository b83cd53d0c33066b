"""Canonical CIFAR-10 ("python version"): pickled batches, from a folder or the .tar.gz.

Layout of ``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5`` (train, 10,000 images
each), ``test_batch`` (10,000) and ``batches.meta``. Each batch is a pickled dict with
``b"data"``: uint8 [N, 3072], each row the 32x32 red plane, then green, then blue (so a plain
reshape gives [N, 3, 32, 32]), and ``b"labels"``: N ints in 0..9. ``batches.meta`` holds the
class names as ``b"label_names"``.
"""
from __future__ import annotations

import hashlib
import importlib
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from .download import fetch
from .image_folder import md5_of, unpack_once
from .imageset import ImageSet

CANONICAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CANONICAL_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCH_DIR = "cifar-10-batches-py"
META = "batches.meta"
SIDE = 32

# The only globals a CIFAR batch needs to rebuild its arrays. Anything else in a pickle (for
# example ``os.system``) would run code on load, so a tampered archive is refused, not executed.
_NUMPY_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_ALLOWED = _NUMPY_RECONSTRUCT | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


def batch_names(split: str) -> list[str]:
    """The batch files holding ``split``: five for "train", one for "test"."""
    if split == "train":
        return [f"data_batch_{i}" for i in range(1, 6)]
    if split == "test":
        return ["test_batch"]
    raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch "
                                         f"(only numpy arrays are expected)")
        if (module, name) in _NUMPY_RECONSTRUCT:
            # Batches pickled by NumPy 1 name numpy.core; NumPy 2 moved it to numpy._core and
            # warns on the old name, so resolve whichever this NumPy has.
            for candidate in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return importlib.import_module(candidate)._reconstruct
                except (ImportError, AttributeError):
                    continue
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """Unpickle one batch file (Python 2 pickle; ``encoding="bytes"`` keeps keys as bytes)."""
    with open(path, "rb") as handle:
        return _BatchUnpickler(handle, encoding="bytes").load()


def batch_folder(path: Path) -> tuple[Path, str]:
    """The folder holding the batch files and the archive's md5 ("" for a folder).

    An archive is unpacked once into the cache; its md5 is remembered there, so later loads
    do not re-hash 163 MiB.
    """
    if path.is_file():
        tree = unpack_once(path)
        nested = tree / BATCH_DIR
        return (nested if nested.is_dir() else tree), (tree / ".complete").read_text().strip()
    return path, ""


def check_split_files(folder: Path, split: str) -> list[Path]:
    """``batches.meta`` and the batch files of ``split`` under ``folder``; FileNotFoundError if any is missing."""
    needed = [folder / META] + [folder / name for name in batch_names(split)]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing CIFAR-10 batch file(s) {', '.join(missing)} in {folder}")
    return needed


def archive_has_split(archive: Path, split: str) -> bool:
    """Whether ``archive`` holds the files of ``split``, by listing it (no unpacking)."""
    wanted = {META, *batch_names(split)}
    with tarfile.open(archive) as tar:
        for member in tar:                   # streams; stops as soon as everything is seen
            wanted.discard(Path(member.name).name)
            if not wanted:
                return True
    return False


def _combined_md5(files: list[Path]) -> str:
    """md5 over the md5s of ``files`` in order: one checksum for a folder-based split."""
    digest = hashlib.md5()
    for file in files:
        digest.update(md5_of(file).encode())
    return digest.hexdigest()


def load_cifar10_batches(path: Path, split: str, description: str) -> ImageSet:
    """Load ``split`` from ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``.

    Returns uint8 images [N, 3, 32, 32] (N = 50,000 train / 10,000 test for the real data) and
    int64 labels [N]. The checksum is the archive's md5, or for a folder an md5 over the md5s of
    ``batches.meta`` and the split's batch files.
    """
    folder, checksum = batch_folder(path)
    files = check_split_files(folder, split)
    meta = read_batch(files[0])
    classes = [name.decode() if isinstance(name, bytes) else str(name) for name in meta[b"label_names"]]
    images, labels = [], []
    for file in files[1:]:
        batch = read_batch(file)
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
            raise ValueError(f"{file}: expected data of shape [N, {3 * SIDE * SIDE}], got {data.shape}")
        images.append(data.reshape(-1, 3, SIDE, SIDE))       # rows are already channel-major
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    checksum = checksum or _combined_md5(files)
    return ImageSet(torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)),
                    classes, f"{description}, {split} split", checksum)


def download_cifar10(dest_root: Path, url: str = CANONICAL_URL, md5: str = CANONICAL_MD5,
                     progress: bool = True) -> Path:
    """Download the canonical archive (about 163 MiB) to ``dest_root/cifar-10-python.tar.gz``.

    The md5 is checked before the file is put in place; see :func:`shared.data.download.fetch`
    for the errors raised. Returns the archive's path.
    """
    hint = (f"Alternatively download {ARCHIVE_NAME} (md5 {CANONICAL_MD5}) on another machine and put it, "
            f"or the unpacked {BATCH_DIR}/ folder, in a folder you pass as --data-root.")
    return fetch(url, Path(dest_root) / ARCHIVE_NAME, md5, progress=progress, manual_hint=hint)
