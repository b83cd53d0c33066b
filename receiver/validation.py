"""Checks of everything a sender can get wrong, before any model runs.

Each function returns the parsed value or raises :class:`receiver.errors.LinkError` with a
message that names the bad field, the value seen, what was expected and what to do.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from protos.wire import MAX_PILOT_SYMBOLS, MAX_SYMBOL_AMPLITUDE, MIN_PILOT_SYMBOLS, bytes_to_symbols

from .errors import invalid, out_of_range

MAX_SESSION_CHARS = 128


def check_session(session: str) -> str:
    """A session id: 1..128 printable characters."""
    if not session:
        raise invalid("MISSING_SESSION", "session is empty: set Frame.session/SyncRequest.session to the id you synced with")
    if len(session) > MAX_SESSION_CHARS or not session.isprintable():
        raise invalid("BAD_SESSION", f"session id must be 1..{MAX_SESSION_CHARS} printable characters, got {session[:40]!r}"
                                     f"{'...' if len(session) > 40 else ''} ({len(session)} characters)")
    return session


def _check_finite(values: torch.Tensor, what: str) -> None:
    bad = ~torch.isfinite(values)
    if bad.any():
        nans = int(torch.isnan(values).sum())
        raise invalid("NON_FINITE", f"{what} holds {nans} NaN and {int(bad.sum()) - nans} infinite values out of "
                                    f"{values.numel()}; send finite float32 channel symbols")
    peak = float(values.abs().max()) if values.numel() else 0.0
    if peak > MAX_SYMBOL_AMPLITUDE:
        raise invalid("BAD_AMPLITUDE", f"{what} holds a symbol of magnitude {peak:.3g}; channel symbols have unit "
                                       f"average power, and even the noisiest channel keeps |symbol| far below "
                                       f"{MAX_SYMBOL_AMPLITUDE:g}: send the encoder's power-normalised output")


def parse_latent(data: bytes, shape: Sequence[int], dtype: str, expected_length: int, max_bytes: int,
                 preset: str = "") -> torch.Tensor:
    """Frame.latent -> float32 real symbols [L], L = ``expected_length`` (the preset's channel_symbols).

    Accepted: dtype "float32" (or empty), shape [L] or [1, L], exactly 4 * L bytes, finite values.
    """
    if len(data) > max_bytes:
        raise invalid("TOO_LARGE", f"latent of {len(data)} bytes exceeds the receiver's limit of {max_bytes} bytes; "
                                   f"one {preset or 'preset'} frame is {4 * expected_length} bytes ({expected_length} "
                                   f"float32 symbols): send one image per frame")
    if dtype not in ("", "float32"):
        raise invalid("BAD_DTYPE", f"latent dtype {dtype!r} is not supported; send little-endian float32 "
                                   f"(dtype 'float32')")
    shape = tuple(int(s) for s in shape)
    if shape not in ((expected_length,), (1, expected_length)):
        raise invalid("BAD_SHAPE", f"latent shape {list(shape)} does not match the receiver's {preset or 'preset'} "
                                   f"codec: expected [{expected_length}] (or [1, {expected_length}]) real symbols; "
                                   f"check that sender and receiver use the same --preset")
    if len(data) != 4 * expected_length:
        raise invalid("BAD_LENGTH", f"latent has {len(data)} bytes but shape {list(shape)} of float32 needs "
                                    f"{4 * expected_length}; encode as little-endian float32"
                                    + (" (it looks like float64)" if len(data) == 8 * expected_length else ""))
    symbols = bytes_to_symbols(data)
    _check_finite(symbols, "latent")
    return symbols


def parse_pilot(data: bytes) -> np.ndarray:
    """SyncRequest.pilot -> float32 real symbols [N], MIN_PILOT_SYMBOLS <= N <= MAX_PILOT_SYMBOLS, finite.

    A read-only numpy view of the bytes (no copy, no torch): this is on the path of every Sync.
    """
    if len(data) % 4:
        raise invalid("BAD_LENGTH", f"pilot has {len(data)} bytes, not a whole number of float32 symbols; "
                                    f"send little-endian float32")
    n = len(data) // 4
    if not MIN_PILOT_SYMBOLS <= n <= MAX_PILOT_SYMBOLS:
        raise invalid("BAD_PILOT_LENGTH", f"pilot has {n} symbols; send {MIN_PILOT_SYMBOLS}..{MAX_PILOT_SYMBOLS} "
                                          f"(about 1000 gives an SNR estimate within ~0.2 dB)")
    symbols = np.frombuffer(data, dtype="<f4")
    if not np.isfinite(symbols).all() or np.abs(symbols).max() > MAX_SYMBOL_AMPLITUDE:
        _check_finite(bytes_to_symbols(data), "pilot")
    return symbols


def check_t_d(t_d: int, t_plus: int, num_timesteps: int) -> int:
    """The frame's t_D: 0 <= t_D and t_P = t_D + t_plus <= T."""
    if t_d < 0 or t_d > num_timesteps:
        raise out_of_range("BAD_TIMESTEP", f"frame t_d = {t_d} is outside 0..{num_timesteps}; stamp each frame with "
                                           f"the t_D from the SyncReply it was diffused under")
    if t_d + t_plus > num_timesteps:
        raise out_of_range("BAD_TIMESTEP", f"t_P = t_d + t_plus = {t_d} + {t_plus} exceeds T = {num_timesteps}; "
                                           f"use a smaller t_d")
    return t_d


def check_t_p(t_p: int, max_t_p: int) -> int:
    """t_P = t_D + t_plus at most the receiver's ``--max-t-p``: the reverse chain costs t_P network calls
    per frame, so an unbounded t_P lets any client keep the models busy (issue 17)."""
    if t_p > max_t_p:
        raise out_of_range("T_P_TOO_LARGE", f"t_P = {t_p} exceeds this receiver's maximum of {max_t_p} (--max-t-p); "
                                            f"the policy's t_D and t_plus must stay within it")
    return t_p


def check_epoch_t_d(t_d: int, epoch_number: int, epoch_t_d: int) -> int:
    """The frame's t_D is the t_D its epoch's SyncReply chose: the sender diffuses under the epoch it
    names, so any other t_D was set by someone else (an on-path relay rewriting frames to t_D = 1
    keeps SSIM high and lets a source perturbation through undetected, issue 17)."""
    if t_d != epoch_t_d:
        raise invalid("TIMESTEP_MISMATCH", f"frame t_d = {t_d} is not the t_D = {epoch_t_d} of epoch {epoch_number} "
                                           f"it names; stamp each frame with the t_D and epoch of one SyncReply")
    return t_d


def check_label(label: int | None, num_classes: int) -> int | None:
    if label is not None and not 0 <= label < num_classes:
        raise out_of_range("BAD_LABEL", f"label {label} is outside 0..{num_classes - 1}; omit the label outside "
                                        f"evaluation mode")
    return label


def check_preset(sender_preset: str, receiver_preset: str) -> None:
    if sender_preset and sender_preset != receiver_preset:
        raise invalid("PRESET_MISMATCH", f"sender preset {sender_preset!r} but this receiver runs {receiver_preset!r}; "
                                         f"start both ends with the same --preset")

