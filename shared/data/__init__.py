"""Datasets: class-folder trees, canonical CIFAR-10 batches, IDX files, the embedded sample, and
the images an evaluation runs on (:func:`load_eval_data`)."""
from .augment import augment
from .eval_images import load_eval_data
from .imageset import ImageSet
from .paths import DataNotFoundError, cache_dir, data_roots
from .registry import load_split
from .sample import load_sample

__all__ = ["ImageSet", "DataNotFoundError", "augment", "cache_dir", "data_roots", "load_split", "load_sample",
           "load_eval_data"]
