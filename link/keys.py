"""The link key on the command line of the sender and the receiver (``--link-key-file``, $DIFFUSEC_LINK_KEY).

The proxy never takes one: it is the channel, and the key is what the channel must not have.
"""
from __future__ import annotations

import logging
from pathlib import Path

import click

from protos.auth import KEY_ENV, LinkAuth, LinkKeyError, load_link_key
from shared.cli_options import fail


def link_key_option():
    return click.option(
        "--link-key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help=f"File holding the key the sender and the receiver share (at least 16 bytes; `openssl rand -hex 32`). "
             f"Syncs, frame headers and acks are then signed (HMAC-SHA256) and checked, and tampered ones refused. "
             f"Default: ${KEY_ENV} (the key itself), else none: the paper's unauthenticated link.")


def link_auth(path: Path | None) -> LinkAuth | None:
    """The signer of ``--link-key-file`` (or $DIFFUSEC_LINK_KEY); None without a key; exit 2 on a bad key."""
    try:
        key = load_link_key(path)
    except LinkKeyError as err:
        fail(str(err))
    return None if key is None else LinkAuth(key)


def log_key_state(log: logging.Logger, keyed: bool) -> None:
    """Say at start-up whether the link's messages are authenticated."""
    if keyed:
        log.info("link key set: syncs, frame headers and acks are signed and checked (HMAC-SHA256)")
    else:
        log.warning("no link key: syncs, frames and acks are not authenticated, so anyone on the path can change "
                    "t_D or forge acks (the paper's setting; see docs/security.md, --link-key-file)")
