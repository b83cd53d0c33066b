"""Command-line options every DiffuSeC command shares, defined once, and the one way a command fails.

Torch-free (click and the presets only), so that a service's ``--help`` starts at once. Each
option is a factory: a command that means something narrower passes its own ``help`` or default,
the flag's name, type and destination stay the same everywhere.

    @preset_option()
    @threads_option()
    @json_option()
    def my_command(preset, threads, as_json): ...
"""
from __future__ import annotations

import sys
from typing import NoReturn

import click

from .presets import DEFAULT_PRESET, NUM_TIMESTEPS, PRESETS

IMAGE_SETS = ("auto", "test", "sample")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input, as click's usage errors)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def note(message: str) -> None:
    """A progress or status line for the user, on stderr (stdout stays parseable with --json)."""
    click.echo(message, err=True)


def preset_option(help: str = "Model/training preset (see shared/presets.py)."):
    return click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET,
                        show_default=True, help=help)


def checkpoints_option(help: str = "Checkpoint folder (default: $DIFFUSEC_CHECKPOINTS/<preset> or "
                                   "checkpoints/<preset>)."):
    return click.option("--checkpoints", type=click.Path(file_okay=False), default=None, help=help)


def data_root_option(help: str = "Folder holding the dataset (default: $DIFFUSEC_DATA, ../shared/data, "
                                 "~/.cache/diffusec/data, /usr/share/datasets)."):
    return click.option("--data-root", type=click.Path(file_okay=False, exists=True), default=None, help=help)


def image_set_option(help: str = "Which images: the full test split (test), the embedded 500-image "
                                 "sample (sample), or the test split where present, else the sample (auto)."):
    """``--data auto|test|sample``, passed as ``image_set`` (the choice of images, not an attack)."""
    return click.option("--data", "image_set", type=click.Choice(IMAGE_SETS), default="auto",
                        show_default=True, help=help)


def threads_option(help: str = "torch threads (default: all cores).", default: int | None = None):
    return click.option("--threads", type=click.IntRange(min=1), default=default,
                        show_default=default is not None, help=help)


def seed_option(help: str | None = None, default: int = 0):
    return click.option("--seed", type=int, default=default, show_default=True, help=help)


def t_d_option(help: str = "Diffusing steps t_D at the sender.", default: int = 20):
    return click.option("--t-d", "t_d", type=click.IntRange(0, NUM_TIMESTEPS), default=default,
                        show_default=True, help=help)


def t_plus_option(help: str = "Extra denoising steps t_plus at the receiver (t_P = t_D + t_plus).",
                  default: int = 0):
    return click.option("--t-plus", "t_plus", type=click.IntRange(0, NUM_TIMESTEPS), default=default,
                        show_default=True, help=help)


def sampler_option(help: str = "Purifier: ddpm (the paper's chain, eqs. 19-23, one network call per "
                               "step) or ddim (strided, --steps calls).", default: str | None = "ddpm"):
    return click.option("--sampler", type=click.Choice(["ddpm", "ddim"]), default=default,
                        show_default=default is not None, help=help)


def steps_option(help: str = "Network calls for --sampler ddim.", default: int = 5):
    return click.option("--steps", type=click.IntRange(min=1), default=default, show_default=True, help=help)


def json_option(help: str = "Print one JSON object as the last stdout line."):
    return click.option("--json", "as_json", is_flag=True, help=help)


def device_option(help: str = "torch device for the models, e.g. cuda."):
    from .devices import DEVICE   # click only; torch loads when the value is checked
    return click.option("--device", type=DEVICE, default="cpu", show_default=True, help=help)
