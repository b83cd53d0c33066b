"""``diffusec data``: fetch and inspect datasets (filled in by the data-loaders work)."""
from __future__ import annotations

import click


@click.group()
def data() -> None:
    """Download and inspect datasets (CIFAR-10, MNIST, Fashion-MNIST)."""
