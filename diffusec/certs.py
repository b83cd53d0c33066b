"""``diffusec certs DIR``: a development CA, server and client certificates and a link key."""
from __future__ import annotations

from pathlib import Path

import click

from shared.cli_options import fail


@click.command("certs")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", "hosts", multiple=True, metavar="NAME",
              help="A name or address the server certificate is valid for, besides localhost/127.0.0.1/::1 "
                   "(repeat; e.g. --host receiver --host proxy for compose).")
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True, help="Validity of every certificate.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def certs_command(out_dir: Path, hosts: tuple[str, ...], days: int, force: bool) -> None:
    """Make a development CA, a server and a client certificate signed by it, and a link key, in OUT_DIR.

    For trying TLS and mutual TLS (the CA's key lies next to them: not for production). The server
    certificate also works as the proxy's client certificate towards the receiver. Then:

    \b
      diffusec-receiver serve --tls-cert D/server.pem --tls-key D/server-key.pem --tls-ca D/ca.pem --link-key-file D/link.key
      diffusec-proxy --tls-cert D/server.pem --tls-key D/server-key.pem --tls-ca D/ca.pem serve ...
      diffusec-sender run --tls-cert D/client.pem --tls-key D/client-key.pem --tls-ca D/ca.pem --link-key-file D/link.key ...
      diffusec-proxy --tls-cert D/client.pem --tls-key D/client-key.pem --tls-ca D/ca.pem stats
    """
    from link.dev_certs import FILES, make_dev_pki

    existing = [name for name in FILES if (out_dir / name).exists()]
    if existing and not force:
        fail(f"{out_dir} already holds {', '.join(existing)}; pass --force to overwrite them")
    for path in make_dev_pki(out_dir, hosts, days):
        click.echo(path)
