"""``diffusec data``: fetch and inspect datasets."""
from __future__ import annotations

import json
from pathlib import Path

import click

from shared.cli_options import data_root_option, json_option, seed_option
from shared.data.paths import DataNotFoundError, cache_dir
from shared.data.registry import DATASETS, SPLITS, locate_split

DOWNLOADABLE = ("cifar10", "mnist")


@click.group()
def data() -> None:
    """Download and inspect datasets (CIFAR-10, MNIST, Fashion-MNIST).

    Datasets are looked up under --data-root when given, else $DIFFUSEC_DATA, else
    ../shared/data, ~/.cache/diffusec/data (where `download` writes) and /usr/share/datasets.
    """


@data.command()
@click.argument("dataset", type=click.Choice(DOWNLOADABLE))
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Folder to download into (default: ~/.cache/diffusec/data, or $DIFFUSEC_CACHE/data, "
                   "which is searched automatically).")
@click.option("--url", default=None,
              help="Download from this URL instead: the .tar.gz itself for cifar10, the folder holding "
                   "the four .gz files for mnist. The canonical md5s are still checked.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def download(dataset: str, dest: str | None, url: str | None, quiet: bool) -> None:
    """Download DATASET with checksum verification.

    \b
    cifar10  https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (163 MiB, md5-checked)
    mnist    the four IDX .gz files from https://ossci-datasets.s3.amazonaws.com/mnist/ (11 MiB)

    Fashion-MNIST is not downloaded here: install Debian's dataset-fashion-mnist package.
    Without internet, copy the files from another machine into a folder and pass it as --data-root.
    """
    from shared.data.cifar_batches import download_cifar10
    from shared.data.download import DownloadError
    from shared.data.idx import MNIST_MIRROR, download_mnist

    root = Path(dest).expanduser() if dest else cache_dir() / "data"
    try:
        if dataset == "cifar10":
            kwargs = {"url": url} if url else {}
            where = download_cifar10(root, progress=not quiet, **kwargs)
        else:
            where = download_mnist(root / "mnist", url or MNIST_MIRROR, progress=not quiet)
    except (DownloadError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{dataset}: saved to {where}")
    if dest:   # a custom folder is not among the default data roots
        click.echo(f"use it with --data-root {root} (or export DIFFUSEC_DATA={root})")


def _describe(dataset: str, split: str, data_root: str | None) -> dict:
    """One row of `data info`: where ``split`` of ``dataset`` would be loaded from, or why not."""
    row = {"dataset": dataset, "split": split}
    try:
        path, description = locate_split(dataset, split, data_root)
        row.update(found=True, path=str(path), source=description)
    except DataNotFoundError as err:
        row.update(found=False, error=str(err))
    except Exception as err:     # e.g. a corrupt archive: report it, keep checking the rest
        row.update(found=False, error=f"{type(err).__name__}: {err}")
    return row


@data.command()
@data_root_option("Only look in this folder (default: $DIFFUSEC_DATA, ../shared/data, ~/.cache/diffusec/data, "
                  "/usr/share/datasets).")
@json_option("Print a JSON list, one object per dataset and split.")
def info(data_root: str | None, as_json: bool) -> None:
    """Show where each dataset's train and test splits would be loaded from.

    Only file names are checked (archives are listed, not unpacked), so this is quick;
    a split that is missing is reported with every path that was tried.
    """
    rows = [_describe(dataset, split, data_root) for dataset in DATASETS for split in SPLITS]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        label = f"{row['dataset']:<8} {row['split']:<5}"
        if row["found"]:
            click.echo(f"{label} {row['source']}: {row['path']}")
        else:
            click.echo(f"{label} not found")
            click.echo("\n".join("    " + line for line in row["error"].splitlines()))


@data.command("make-sample")
@click.argument("dataset", type=click.Choice(DATASETS), default="cifar10")
@data_root_option("Where the full test split is.")
@click.option("--per-class", type=click.IntRange(min=1), default=50, show_default=True)
@seed_option()
def make_sample(dataset: str, data_root: str | None, per_class: int, seed: int) -> None:
    """Rebuild the embedded test sample shipped in shared/assets/ (PER_CLASS images of each class).

    The shipped cifar10 sample was made with the defaults from the CIFAR-10 JPEG q75 copy.
    """
    from shared.data.registry import load_split
    from shared.data.sample import write_sample

    try:
        full = load_split(dataset, "test", data_root)
    except DataNotFoundError as err:
        raise click.ClickException(str(err)) from None
    path = write_sample(full, dataset, per_class, seed)
    click.echo(f"wrote {per_class * len(full.classes)} images of {full.description} to {path}")
