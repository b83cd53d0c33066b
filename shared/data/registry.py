"""``load_split(dataset, split)``: find a dataset under the data roots, or say what was tried.

Sources, in the order they are tried under each root:

=========  =====================================================================================
cifar10    ``cifar10-jpeg-q75.tar.gz`` or ``cifar10-jpeg-q75/`` (the JPEG copy, class folders);
           ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz`` (canonical pickled batches)
mnist      ``mnist-test/`` or ``mnist/`` with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``
fmnist     ``fashion-mnist/`` (Debian's ``dataset-fashion-mnist``) or ``fmnist/``, same IDX names
=========  =====================================================================================
"""
from __future__ import annotations

import os
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Callable

from .image_folder import load_class_folder_split
from .imageset import ImageSet
from .paths import DataNotFoundError, data_roots

SPLITS = ("train", "test")
DATASETS = ("cifar10", "mnist", "fmnist")

# (relative path under a root, human description, loader(path, split, description))
Source = tuple[str, str, Callable[[Path, str, str], ImageSet]]


def _cifar_batches(path: Path, split: str, description: str) -> ImageSet:
    from .cifar_batches import load_cifar10_batches
    return load_cifar10_batches(path, split, description)


def _idx(path: Path, split: str, description: str) -> ImageSet:
    from .idx import load_idx_split
    return load_idx_split(path, split, description)


SOURCES: dict[str, list[Source]] = {
    "cifar10": [
        ("cifar10-jpeg-q75.tar.gz", "CIFAR-10 (JPEG q75 copy)", load_class_folder_split),
        ("cifar10-jpeg-q75", "CIFAR-10 (JPEG q75 copy)", load_class_folder_split),
        ("cifar-10-batches-py", "CIFAR-10 (canonical python batches)", _cifar_batches),
        ("cifar-10-python.tar.gz", "CIFAR-10 (canonical python batches)", _cifar_batches),
    ],
    "mnist": [
        ("mnist", "MNIST", _idx),
        ("mnist-test", "MNIST", _idx),
    ],
    "fmnist": [
        ("fashion-mnist", "Fashion-MNIST", _idx),
        ("fmnist", "Fashion-MNIST", _idx),
    ],
}


def _probe_class_folder(path: Path, split: str) -> None:
    """Raise FileNotFoundError unless the class-folder tree or archive has a ``split/`` folder."""
    if path.is_dir():
        if not (path / split).is_dir():
            raise FileNotFoundError(f"{path} has no '{split}/' folder of class folders")
        return
    with tarfile.open(path) as tar:
        for member in tar:                   # streams; stops at the first file of the split
            if member.name.removeprefix("./").startswith(f"{split}/"):
                return
    raise FileNotFoundError(f"{path} has no '{split}/' folder of class folders")


def _probe_cifar_batches(path: Path, split: str) -> None:
    from . import cifar_batches
    if path.is_dir():
        cifar_batches.check_split_files(path, split)
    elif not cifar_batches.archive_has_split(path, split):
        raise FileNotFoundError(f"{path} lacks batches.meta or the {split} batch files")


def _probe_idx(path: Path, split: str) -> None:
    from .idx import idx_split_files
    idx_split_files(path, split)


# Cheap checks that a source holds a split, without decoding it (for `diffusec data info`).
# Each raises FileNotFoundError in the same cases as its loader.
PROBES: dict[Callable, Callable[[Path, str], None]] = {
    load_class_folder_split: _probe_class_folder,
    _cifar_batches: _probe_cifar_batches,
    _idx: _probe_idx,
}

# What reading a damaged archive, pickle or image raises (gzip.BadGzipFile and PIL's
# UnidentifiedImageError are OSErrors).
CORRUPT_DATA_ERRORS = (tarfile.TarError, pickle.UnpicklingError, EOFError, zlib.error, OSError)

HINTS = {
    "cifar10": "pass --data-root DIR (or set DIFFUSEC_DATA) to a folder holding one of these, "
               "or run `diffusec data download cifar10` to fetch the canonical batches",
    "mnist": "pass --data-root DIR (or set DIFFUSEC_DATA), or run `diffusec data download mnist`",
    "fmnist": "install Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist), "
              "or pass --data-root DIR / set DIFFUSEC_DATA",
}


def _first_source(dataset: str, split: str, data_root, use: Callable[[Callable, Path, str], object]):
    """Call ``use(loader, path, description)`` on each existing source in order; return the first
    result that does not raise FileNotFoundError, else raise DataNotFoundError listing every try."""
    if dataset not in SOURCES:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    tried: list[str] = []
    for root in data_roots(data_root):
        for relative, description, loader in SOURCES[dataset]:
            path = root / relative
            if not path.exists():
                tried.append(str(path))
                continue
            try:
                return use(loader, path, description)
            except FileNotFoundError as err:   # the source exists but lacks this split
                tried.append(f"{path} ({err})")
            except CORRUPT_DATA_ERRORS as err:  # truncated download, junk file: say so, try the next source
                first_line = (str(err).splitlines() or [""])[0].rstrip(":")
                tried.append(f"{path} (unreadable, {type(err).__name__}: {first_line}; delete it and fetch it again)")
    raise DataNotFoundError(f"{dataset} {split} split not found. Tried:\n  " + "\n  ".join(tried)
                            + f"\nTo fix: {HINTS[dataset]}.")


def load_split(dataset: str, split: str, data_root: str | os.PathLike | None = None) -> ImageSet:
    """Load ``split`` ("train" or "test") of ``dataset`` from the first source found.

    Raises :class:`DataNotFoundError` naming every path tried, and how to get the data.
    """
    return _first_source(dataset, split, data_root, lambda loader, path, description: loader(path, split, description))


def locate_split(dataset: str, split: str, data_root: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Where :func:`load_split` would load ``split`` from, as (path, description), without decoding.

    Raises :class:`DataNotFoundError` exactly like :func:`load_split`.
    """
    def probe(loader: Callable, path: Path, description: str) -> tuple[Path, str]:
        PROBES[loader](path, split)
        return path, description
    return _first_source(dataset, split, data_root, probe)
