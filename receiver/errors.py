"""The receiver's domain error: what was wrong with a request, as a gRPC status name and a reason.

Domain modules raise :class:`LinkError`; the gRPC servicer turns it into a status (``code`` is a
``grpc.StatusCode`` name such as ``"INVALID_ARGUMENT"``), with ``reason`` in the trailing
metadata (``diffusec-reason``) so clients can react without parsing the message.
"""
from __future__ import annotations


class LinkError(Exception):
    """A bad request. ``message`` says what was wrong and what to do about it."""

    def __init__(self, code: str, reason: str, message: str):
        super().__init__(message)
        self.code = code          # grpc.StatusCode name: INVALID_ARGUMENT, OUT_OF_RANGE, ...
        self.reason = reason      # machine-readable, e.g. UNKNOWN_SESSION, BAD_SHAPE
        self.message = message


def invalid(reason: str, message: str) -> LinkError:
    return LinkError("INVALID_ARGUMENT", reason, message)


def out_of_range(reason: str, message: str) -> LinkError:
    return LinkError("OUT_OF_RANGE", reason, message)
