"""Security options of the services' command lines: the link key and TLS.

- ``--link-key-file`` / $DIFFUSEC_LINK_KEY: the sender and the receiver only. The proxy never takes
  one: it is the channel, and the key is what the channel must not have.
- ``--tls-cert``, ``--tls-key``, ``--tls-ca``: every service and client (:mod:`protos.tls`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import click

from protos.auth import KEY_ENV, LinkAuth, LinkKeyError, load_link_key
from protos.tls import TlsError, TlsFiles
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


def tls_options(role: str):
    """``--tls-cert``, ``--tls-key``, ``--tls-ca`` (and ``--tls-server-name`` for clients); ``role``:
    "server", "client" or "proxy" (both). The command gets them as ``tls_cert``, ``tls_key``, ... ."""
    pem = click.Path(exists=True, dir_okay=False, path_type=Path)
    serves, calls = role in ("server", "proxy"), role in ("client", "proxy")
    cert_help = ("PEM certificate " + ("to serve TLS with" if serves else "") + (" and " if serves and calls else "")
                 + ("to present to servers (mutual TLS)" if calls else "") + "; with --tls-key.")
    ca_help = ("PEM CA certificate: " + ("require client certificates it signed (mutual TLS)" if serves else "")
               + ("; " if serves and calls else "") + ("verify servers against it" if calls else "")
               + ". `diffusec certs DIR` makes a development CA and certificates.")
    options = [click.option("--tls-cert", type=pem, default=None, help=cert_help),
               click.option("--tls-key", type=pem, default=None, help="PEM private key of --tls-cert."),
               click.option("--tls-ca", type=pem, default=None, help=ca_help)]
    if calls:
        options.append(click.option("--tls-server-name", default=None,
                                    help="The name the server's certificate must carry (default: the host you "
                                         "connect to)."))

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


def tls_files(tls_cert=None, tls_key=None, tls_ca=None, tls_server_name=None) -> TlsFiles:
    """The TLS files of the options; exit 2 when they do not fit together."""
    try:
        return TlsFiles(tls_cert, tls_key, tls_ca, tls_server_name)
    except TlsError as err:
        fail(str(err))
