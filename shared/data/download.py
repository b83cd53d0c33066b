"""Fetch one file over HTTP(S) into place, verified by md5, or fail saying why.

Used by ``diffusec data download``. The file is written to a temporary name beside its final
place and only renamed once the checksum matches, so an interrupted or corrupted download never
leaves something that looks like a dataset for :func:`shared.data.load_split` to pick up.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .image_folder import md5_of

CHUNK = 1 << 16          # bytes per read: small enough for a smooth progress bar
TIMEOUT_S = 60           # per blocking socket operation, not for the whole transfer


class DownloadError(ConnectionError):
    """The server could not be reached or the transfer broke off."""


def _offline_hint(url: str, reason: object, manual_hint: str) -> str:
    return (f"could not download {url}: {reason}. This machine may be offline or the server "
            f"unreachable. {manual_hint}")


def fetch(url: str, dest: Path, md5: str, progress: bool = True, manual_hint: str = "") -> Path:
    """Download ``url`` to ``dest`` and check it against ``md5`` (hex digest); return ``dest``.

    A ``dest`` that already exists with the right md5 is kept without downloading again.
    Raises :class:`DownloadError` on network failure and :class:`ValueError` on a checksum
    mismatch; in both cases no partial file is left behind.
    """
    dest = Path(dest)
    if dest.exists() and md5_of(dest) == md5:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as dest so the final rename is atomic (no cross-filesystem copy).
    handle, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            got = _stream(url, out, progress, manual_hint)
        if got != md5:
            tmp.unlink()
            raise ValueError(f"checksum mismatch for {url}: expected md5 {md5}, got {got}. "
                             f"The downloaded file was deleted; check the URL or try again.")
        os.replace(tmp, dest)
    finally:
        # Covers network errors and Ctrl-C as well: never leave a half-written file.
        tmp.unlink(missing_ok=True)
    return dest


def _stream(url: str, out, progress: bool, manual_hint: str) -> str:
    """Copy the body of ``url`` into the open binary file ``out``; return its md5 hex digest."""
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"could not download {url}: HTTP {err.code} {err.reason}. {manual_hint}") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:   # DNS, refused, timeout
        raise DownloadError(_offline_hint(url, getattr(err, "reason", err), manual_hint)) from err
    except ValueError as err:                            # not a URL at all, e.g. a bare path
        raise DownloadError(f"could not download {url!r}: {err}") from err
    digest = hashlib.md5()
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        # Only draw a bar when the size is known; a bare byte counter says little.
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                  desc=url.rstrip("/").rsplit("/", 1)[-1], disable=not progress or total is None) as bar:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:   # reset, timeout, truncated body
                    raise DownloadError(f"download of {url} broke off after {received} bytes: {err}. "
                                        f"{manual_hint}") from err
                if not block:
                    break
                out.write(block)     # a disk error here propagates as itself, not as "offline"
                digest.update(block)
                received += len(block)
                bar.update(len(block))
    if total is not None and received != total:
        raise DownloadError(f"download of {url} stopped after {received} of {total} bytes. {manual_hint}")
    return digest.hexdigest()
