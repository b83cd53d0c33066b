"""Where data and caches live: a data root set by option or ``DIFFUSEC_DATA``, else defaults."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class DataNotFoundError(FileNotFoundError):
    """Raised with every path that was tried and what to do about it."""


def cache_dir() -> Path:
    """Cache for unpacked archives and decoded arrays (``DIFFUSEC_CACHE`` or ~/.cache/diffusec)."""
    root = os.environ.get("DIFFUSEC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "diffusec")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """Candidate data roots, most specific first.

    An explicit ``data_root`` (the ``--data-root`` option) is the only one searched when given,
    so a typo is reported instead of silently falling back to another copy.
    """
    if data_root is not None:
        return [Path(data_root).expanduser()]
    roots = []
    if os.environ.get("DIFFUSEC_DATA"):
        return [Path(os.environ["DIFFUSEC_DATA"]).expanduser()]
    roots.append(REPO_ROOT.parent / "shared" / "data")     # the development machines' layout
    roots.append(cache_dir() / "data")                     # where `diffusec data download` writes
    roots.append(Path("/usr/share/datasets"))              # Debian's dataset-* packages
    return roots
