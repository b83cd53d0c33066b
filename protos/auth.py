"""Authenticity of the link's control messages: HMAC-SHA256 under a key that the sender and the
receiver share and the channel proxy (the untrusted channel) does not.

What is covered (issue 17, docs/security.md): the SyncRequest (session, sequence, preset), the
SyncReply (everything the sender acts on, and the request's session and sequence, so an old
reply is useless), each Frame's header (session, id, epoch, t_d, shape, dtype, label,
return_image, pilot_blocks) and each Ack (the session and every field, the image by its SHA-256).
Not covered, by design: the pilots (Sync and frame) and the latent, which the channel perturbs
(that is what it is for).

Each MAC is over a canonical encoding: a context string naming the message, then every field as
``type byte + 4-byte big-endian length + bytes`` (integers in decimal, floats as IEEE-754 doubles),
so no two different messages encode alike. Standard library only (``hmac``, ``hashlib``).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only: the CLIs read KEY_ENV and load keys without protobuf
    from .diffusec.link.v1 import link_pb2

KEY_ENV = "DIFFUSEC_LINK_KEY"
MIN_KEY_BYTES = 16
MAC_BYTES = 32
_CONTEXT = b"diffusec-link-v1/"


class LinkKeyError(ValueError):
    """The link key cannot be read, or is too short."""


def load_link_key(path: str | os.PathLike | None = None) -> bytes | None:
    """The key from ``path`` (``--link-key-file``), else from $DIFFUSEC_LINK_KEY, else None (no key).

    The key is the file's (or variable's) bytes, surrounding white space removed: ``openssl rand -hex 32``
    or ``diffusec certs DIR`` make one. LinkKeyError when the file is unreadable or the key is shorter
    than 16 bytes.
    """
    if path is not None:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as err:
            raise LinkKeyError(f"cannot read the link key file {path}: {err.strerror}") from None
        where = f"link key file {path}"
    else:
        text = os.environ.get(KEY_ENV)
        if text is None:
            return None
        key, where = text.strip().encode(), f"${KEY_ENV}"
    if len(key) < MIN_KEY_BYTES:
        raise LinkKeyError(f"the {where} holds {len(key)} bytes; a link key needs at least {MIN_KEY_BYTES} "
                           f"(make one with `openssl rand -hex 32 > link.key`)")
    return key


def _field(value) -> bytes:
    if value is None:
        kind, data = b"n", b""
    elif isinstance(value, bool):
        kind, data = b"b", b"1" if value else b"0"
    elif isinstance(value, int):
        kind, data = b"i", str(value).encode()
    elif isinstance(value, float):
        kind, data = b"f", struct.pack(">d", value)
    elif isinstance(value, str):
        kind, data = b"s", value.encode()
    elif isinstance(value, bytes):
        kind, data = b"y", value
    elif isinstance(value, (tuple, list)):
        kind, data = b"l", b"".join(_field(v) for v in value)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} for a MAC")
    return kind + len(data).to_bytes(4, "big") + data


def canonical(message_kind: str, *fields) -> bytes:
    """The bytes a MAC is taken over: the message's kind, then every field (see the module doc)."""
    return _CONTEXT + message_kind.encode() + b"\0" + b"".join(_field(f) for f in fields)


def sync_request_fields(request: link_pb2.SyncRequest) -> bytes:
    return canonical("sync-request", request.session, request.sequence, request.preset)


def sync_reply_fields(session: str, sequence: int, reply: link_pb2.SyncReply) -> bytes:
    return canonical("sync-reply", session, sequence, reply.epoch, reply.t_d, reply.t_plus, float(reply.snr_db),
                     reply.policy, reply.preset, reply.latent_length, reply.num_timesteps, reply.frame_pilot_symbols,
                     reply.frame_pilot_blocks)


def frame_fields(frame: link_pb2.Frame) -> bytes:
    label = frame.label if frame.HasField("label") else None
    return canonical("frame", frame.session, frame.frame_id, frame.epoch, frame.t_d, list(frame.shape), frame.dtype,
                     label, frame.return_image, frame.pilot_blocks)


def ack_fields(session: str, ack: link_pb2.Ack) -> bytes:
    error = (ack.error.code, ack.error.reason, ack.error.message) if ack.HasField("error") else None
    return canonical("ack", session, ack.frame_id, ack.predicted_class, ack.t_p, ack.epoch, ack.t_d,
                     hashlib.sha256(ack.image).digest(), list(ack.image_shape), ack.duplicate, error)


class LinkAuth:
    """Signs and checks the link's messages with one key (see the module doc)."""

    def __init__(self, key: bytes):
        if len(key) < MIN_KEY_BYTES:
            raise LinkKeyError(f"a link key needs at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        self._key = key

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def valid(self, data: bytes, mac: bytes) -> bool:
        """Whether ``mac`` is the MAC of ``data`` (in constant time)."""
        return len(mac) == MAC_BYTES and hmac.compare_digest(self.mac(data), mac)

    # --- per message: sign_* sets .mac, *_valid checks it ------------------------------------
    def sign_sync_request(self, request: link_pb2.SyncRequest) -> None:
        request.mac = self.mac(sync_request_fields(request))

    def sync_request_valid(self, request: link_pb2.SyncRequest) -> bool:
        return self.valid(sync_request_fields(request), request.mac)

    def sign_sync_reply(self, session: str, sequence: int, reply: link_pb2.SyncReply) -> None:
        reply.mac = self.mac(sync_reply_fields(session, sequence, reply))

    def sync_reply_valid(self, session: str, sequence: int, reply: link_pb2.SyncReply) -> bool:
        return self.valid(sync_reply_fields(session, sequence, reply), reply.mac)

    def sign_frame(self, frame: link_pb2.Frame) -> None:
        frame.mac = self.mac(frame_fields(frame))

    def frame_valid(self, frame: link_pb2.Frame) -> bool:
        return self.valid(frame_fields(frame), frame.mac)

    def sign_ack(self, session: str, ack: link_pb2.Ack) -> None:
        ack.mac = self.mac(ack_fields(session, ack))

    def ack_valid(self, session: str, ack: link_pb2.Ack) -> bool:
        return self.valid(ack_fields(session, ack), ack.mac)
