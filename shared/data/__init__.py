"""Datasets: class-folder trees, canonical CIFAR-10 batches, IDX files, the embedded sample."""
from .augment import augment
from .imageset import ImageSet
from .paths import DataNotFoundError, cache_dir, data_roots
from .registry import load_split
from .sample import load_sample

__all__ = ["ImageSet", "DataNotFoundError", "augment", "cache_dir", "data_roots", "load_split", "load_sample"]
