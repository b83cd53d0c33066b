"""Optional TLS and mutual TLS on every gRPC hop (sender -> proxy -> receiver, and ChannelControl).

One :class:`TlsFiles` per process, from ``--tls-cert``, ``--tls-key`` and ``--tls-ca`` (PEM files;
``diffusec certs DIR`` makes a development set):

- a server with cert + key serves TLS; with a CA as well it requires client certificates signed by
  it (mutual TLS);
- a client with a CA verifies the server against it (and the server's name, or
  ``--tls-server-name``); with cert + key as well it presents them (mutual TLS).

The proxy is both: it serves the sender and is a client of the receiver, with the same files.
Without any of the options every hop is plaintext, as before.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # grpc is imported where credentials are made: the CLIs build TlsFiles at parse time
    import grpc

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


class TlsError(ValueError):
    """TLS options that do not fit together, or unreadable PEM files."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one process; all None: plaintext."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    server_name: str | None = None   # clients: the name the server's certificate must carry (default: the host)

    def __post_init__(self):
        if (self.cert is None) != (self.key is None):
            raise TlsError("--tls-cert and --tls-key go together: give both (a certificate and its private key)")

    @property
    def enabled(self) -> bool:
        return self.cert is not None or self.ca is not None

    def _read(self, path: Path | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as err:
            raise TlsError(f"cannot read the TLS {what} {path}: {err.strerror}") from None

    def server_credentials(self) -> grpc.ServerCredentials:
        """TLS for a server (needs cert + key); with a CA, client certificates signed by it are required."""
        if self.cert is None:
            raise TlsError("a TLS server needs --tls-cert and --tls-key (--tls-ca alone only verifies servers)")
        ca = self._read(self.ca, "CA certificate")
        pair = (self._read(self.key, "private key"), self._read(self.cert, "certificate"))
        import grpc

        return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """TLS for a client: verify the server with the CA (the system's roots without one); present cert + key if given."""
        import grpc

        return grpc.ssl_channel_credentials(root_certificates=self._read(self.ca, "CA certificate"),
                                            private_key=self._read(self.key, "private key"),
                                            certificate_chain=self._read(self.cert, "certificate"))

    def channel_options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


PLAINTEXT = TlsFiles()


def open_channel(address: str, tls: TlsFiles, options: list) -> grpc.Channel:
    """A client channel to ``address``: TLS when ``tls`` is enabled, else plaintext."""
    import grpc

    if not tls.enabled:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, tls.channel_credentials(), options=[*options, *tls.channel_options()])


def is_loopback(address: str) -> bool:
    """Whether ``address`` (host:port) listens on loopback only."""
    host = address.rpartition(":")[0].strip("[]")
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
