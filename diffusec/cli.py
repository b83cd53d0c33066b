"""The ``diffusec`` root command: the group, and every command registered under it.

Each command lives in its own module (see :mod:`diffusec`); this one only assembles the tree.
"""
from __future__ import annotations

import click

from link.cli import register as register_link_commands
from shared.cli_options import COMMAND_CONTEXT

from .agent import eval_adaptation_command
from .attacks import eval_attacks
from .certs import certs_command
from .data import data
from .evaluate import eval_command
from .purification import eval_purification
from .report import report_command
from .train import train


@click.group(context_settings=COMMAND_CONTEXT)
def main() -> None:
    """DiffuSeC Link: secure semantic communication with asymmetric diffusion.

    Train the models (`train`), measure the pipeline in one process (`eval`), fetch data (`data`);
    run the gRPC link locally (`up`, `demo`), measure it (`bench`), probe a service (`health`).
    """


main.add_command(train)
main.add_command(eval_command)
for _experiment in (eval_attacks, eval_purification, eval_adaptation_command):
    eval_command.add_command(_experiment)
main.add_command(data)
register_link_commands(main)
main.add_command(report_command)
main.add_command(certs_command)
