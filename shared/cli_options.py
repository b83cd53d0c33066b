"""Command-line options every DiffuSeC command shares, defined once, and the one way a command fails.

Torch-free (click and the presets only), so that a service's ``--help`` starts at once. Each
option is a factory: a command that means something narrower passes its own ``help`` or default,
the flag's name, type and destination stay the same everywhere.

    @preset_option()
    @threads_option()
    @json_option()
    def my_command(preset, threads, as_json): ...

Besides the options: :func:`fail` and :func:`fail_on` (bad input ends a command with ``error:``
and exit 2), :func:`note` (status lines on stderr), :func:`show_progress`, :func:`set_threads`;
option groups (:func:`in_process_options`), a comma-list callback (:func:`comma_separated`) and
options made from a config dataclass's fields (:func:`dataclass_options`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from typing import Callable, NoReturn

import click

from .presets import DEFAULT_PRESET, NUM_TIMESTEPS, PRESETS

IMAGE_SETS = ("auto", "test", "sample", "heldout")
# click context of the diffusec commands: -h as well as --help, help text wrapped at 100 columns.
COMMAND_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input, as click's usage errors)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def note(message: str) -> None:
    """A progress or status line for the user, on stderr (stdout stays parseable with --json)."""
    click.echo(message, err=True)


@contextlib.contextmanager
def fail_on(*errors: type[BaseException]):
    """Inside the block, any of ``errors`` ends the command with :func:`fail` and its message.

    For the errors that mean bad input rather than a bug: a missing checkpoint or dataset, a
    setting the domain code refuses (ValueError). Anything else still raises with its traceback.
    """
    try:
        yield
    except errors as err:
        fail(str(err))


def show_progress(as_json: bool = False) -> bool:
    """Progress bars on stderr: only for a person watching (a terminal), never with --json or
    when $DIFFUSEC_NO_PROGRESS is set (logs, CI)."""
    return not as_json and sys.stderr.isatty() and not os.environ.get("DIFFUSEC_NO_PROGRESS")


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)``; None keeps torch's default (all cores). Loads torch."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def comma_separated(kind: Callable, what: str = "values"):
    """A click callback: ``"1,2,3"`` -> ``(kind("1"), kind("2"), kind("3"))``; None stays None.

    A value ``kind`` refuses is a usage error naming the option ("give comma-separated WHAT").
    """
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"give comma-separated {what}, got {value!r}", ctx=ctx, param=param) from None
    return parse


def dataclass_options(config_class: type, help_prefix: str = ""):
    """A decorator adding one option per field of the dataclass ``config_class``.

    ``field_name`` becomes ``--field-name`` with the field's default and its type (that of the
    default), passed to the command as ``field_name``; the help is ``help_prefix`` + the field's
    ``metadata["help"]`` (a field without one is a KeyError when the command is built, so none
    slips through undocumented). The dataclass is the one place a setting, its default and its
    help live.
    """
    def decorate(func):
        for f in reversed(dataclasses.fields(config_class)):
            func = click.option(f"--{f.name.replace('_', '-')}", f.name, type=type(f.default), default=f.default,
                                show_default=True, help=f"{help_prefix}{f.metadata['help']}.")(func)
        return func
    return decorate


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
                                 "sample (sample), the test split where present, else the sample (auto), or the "
                                 "training split's held-out images, which no model trained on (heldout).",
                     default: str = "auto"):
    """``--data auto|test|sample|heldout``, passed as ``image_set`` (the choice of images, not an attack)."""
    return click.option("--data", "image_set", type=click.Choice(IMAGE_SETS), default=default,
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


def batch_option(default: int = 250):
    """``--batch``: images per forward pass."""
    return click.option("--batch", type=click.IntRange(min=1), default=default, show_default=True)


# shared.fading's CHANNEL_KINDS, CSI_MODES and EQUALISERS, copied: this module stays torch-free (tests check they agree)
CHANNEL_KINDS = ("awgn", "rayleigh", "rician")
CSI_MODES = ("perfect", "pilot")
EQUALISERS = ("mmse", "zf")


def link_channel_options(func):
    """--channel, --k-db, --fading-block, --csi, --pilot-symbols, --equaliser: the channel besides AWGN
    (shared.fading), passed as channel, k_db, fading_block, csi, pilot_symbols, equaliser (None when not given);
    build it with
    :func:`shared.fading.link_channel`."""
    options = (
        click.option("--channel", type=click.Choice(CHANNEL_KINDS), default="awgn", show_default=True,
                     help="awgn: white Gaussian noise only (shared.channel.awgn); rayleigh, rician: block fading "
                          "(complex I/Q pairs of the latent's real symbols, E|h|^2 = 1, so --snr-db is the average "
                          "SNR), equalised at the receiver."),
        click.option("--k-db", type=float, default=None, help="rician: K factor (LOS / scattered power) in dB."),
        click.option("--fading-block", type=click.IntRange(min=1), default=None,
                     help="Complex symbols per fading coefficient (default: one coefficient per frame)."),
        click.option("--csi", type=click.Choice(CSI_MODES), default=None,
                     help="What the receiver's equaliser knows: perfect (h and the SNR) or pilot (least-squares h "
                          "and the SNR estimated from known pilots through the same h; default perfect)."),
        click.option("--pilot-symbols", type=click.IntRange(min=2), default=None,
                     help="--csi pilot: known complex pilot symbols per fading block, sent besides the latent "
                          "(default 8)."),
        click.option("--equaliser", type=click.Choice(EQUALISERS), default=None,
                     help="zf: y / h, the AWGN-trained decoder's match (default); mmse: conj(h) y / (|h|^2 + 1/SNR)."),
    )
    for option in reversed(options):
        func = option(func)
    return func


def in_process_options(image_set_help: str | None = None, batch: int = 250):
    """What an in-process measurement runs on and with, in this order: --data, --data-root,
    --checkpoints, --batch, --threads, --device (their default helps; ``image_set_help`` for --data)."""
    options = (image_set_option() if image_set_help is None else image_set_option(image_set_help),
               data_root_option(), checkpoints_option(), batch_option(batch), threads_option(), device_option())

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func
    return decorate
