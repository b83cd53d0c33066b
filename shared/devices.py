"""The torch device a command runs its models on: checked before any model loads.

A typo (``--device gpu``) or a CUDA device on a machine without one would otherwise surface as a
torch RuntimeError deep inside model loading.
"""
from __future__ import annotations

import click


def check_device(name: str):
    """``name`` as a torch.device that exists here; ValueError saying what to use instead."""
    import torch   # here, not at import: CLIs that only parse options stay quick to start

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"{name!r} is not a torch device: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name!r}: torch sees no CUDA GPU on this machine (this torch build: "
                             f"{torch.__version__}); use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif device.type != "cpu":
        raise ValueError(f"{name!r}: only cpu and cuda devices are supported")
    return device


class DeviceParam(click.ParamType):
    """A click option type for ``--device``: the name, checked with :func:`check_device`."""

    name = "device"

    def convert(self, value, param, ctx):
        try:
            check_device(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)
        return str(value)


DEVICE = DeviceParam()
