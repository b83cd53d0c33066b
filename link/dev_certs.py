"""A development PKI for the link's TLS (``diffusec certs DIR``): a CA, a server and a client
certificate signed by it, and a link key. Made with the ``cryptography`` library (EC P-256, SHA-256).

For trying TLS and mutual TLS on one machine or in compose, not for production: the CA's private
key lies next to the certificates, and nothing revokes them.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Names every server certificate carries, so that loopback addresses verify without --tls-server-name.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem", "link.key")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DiffuSeC Link (development)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_names(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names = []
    for host in dict.fromkeys((*LOOPBACK_NAMES, *hosts)):   # in order, once each
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _certificate(subject: str, key, issuer: x509.Name, issuer_key, days: int, *, ca: bool = False,
                 usage: tuple = (), hosts: tuple[str, ...] | None = None) -> x509.Certificate:
    """A certificate of ``subject``'s ``key`` signed by ``issuer_key``: a CA, or a leaf with extended key
    ``usage`` and, for a server (``hosts`` not None), the loopback names and ``hosts`` as alt names."""
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    if hosts is not None:
        builder = builder.add_extension(_alt_names(hosts), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_dev_pki(out: Path, hosts: tuple[str, ...] = (), days: int = 365) -> list[Path]:
    """Write :data:`FILES` into ``out`` -> their paths. The server certificate is valid for loopback
    and for ``hosts`` (e.g. compose service names); the client certificate is for mutual TLS."""
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("DiffuSeC Link development CA", ca_key, _name("DiffuSeC Link development CA"), ca_key, days,
                      ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    # The proxy serves senders and is a client of the receiver with the same files: the server
    # certificate is good for both ends of a connection.
    server = _certificate("diffusec-link-server", server_key, ca.subject, ca_key, days,
                          usage=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH), hosts=hosts)
    client = _certificate("diffusec-link-client", client_key, ca.subject, ca_key, days,
                          usage=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    for name, data, private in (("ca.pem", _pem(ca), False), ("ca-key.pem", _key_pem(ca_key), True),
                                ("server.pem", _pem(server), False), ("server-key.pem", _key_pem(server_key), True),
                                ("client.pem", _pem(client), False), ("client-key.pem", _key_pem(client_key), True),
                                ("link.key", os.urandom(32).hex().encode() + b"\n", True)):
        _write(out / name, data, private)
    return [out / name for name in FILES]
