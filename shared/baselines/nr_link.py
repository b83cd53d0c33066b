"""The digital link of the conventional baseline, on 5G NR blocks from Sionna (``sionna-no-rt``).

A mode (:mod:`.link_modes`) and the semantic link's budget of L real symbols per image fix one
codeword per image. Per image, with n = L b coded bits at b bits per real symbol:

    payload bits [k - 24] --CRC24A--> [k] --5G NR LDPC (TS 38.212: base graph, lifting, rate
    matching to n, the bit interleaver for 2b-bit QAM)--> [n] --TB scrambler (TS 38.211)-->
    Gray QAM, Es = 1 --x sqrt(2)--> L real symbols at unit power

and back: APP demapping at the known noise variance, descrambling, BP decoding, the CRC. k = floor(n
rate). A frame is delivered when its CRC passes, the way a 5G receiver detects a bad transport
block (24 payload bits per image; docs/baselines.md compares it with the 802.16e link written
here before it, which trusted a zero syndrome). Sionna's decoder runs a fixed number of iterations; this one stops each frame early once
its CRC passes, checking every :data:`ITERATIONS_PER_CHECK` iterations, up to :data:`MAX_ITERATIONS`.

Units: real symbols at unit average power, noise variance per real symbol (10^(-SNR/10)), as
:mod:`shared.channel`. A complex QAM symbol at Es = 1 is two real symbols at 1/2 each, so it is
scaled by sqrt(2); the demapper then sees N0 = the noise variance per real symbol.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .link_modes import LinkMode

LINK_NAME = "CRC24A + 5G NR LDPC + QAM (Sionna)"
CRC = "CRC24A"
CRC_BITS = 24
MAX_ITERATIONS = 20          # Sionna's default for its 5G decoder
ITERATIONS_PER_CHECK = 5
CHECK_NODE_UPDATE = "boxplus-phi"   # Sionna's default (exact); offset-minsum measured no faster here


@dataclass(frozen=True)
class FramePlan:
    """How one image's budget of ``channel_symbols`` real symbols is filled in ``mode`` with one 5G NR codeword."""

    mode: LinkMode
    channel_symbols: int

    def __post_init__(self) -> None:
        if not isinstance(self.channel_symbols, (int, np.integer)) or self.channel_symbols < 1:
            raise ValueError(f"channel_symbols must be a positive integer, got {self.channel_symbols!r}")
        if self.frame_bits % (2 * self.mode.bits_per_real_symbol) or self.info_bits < 1:
            raise ValueError(f"{self.channel_symbols} real symbols do not carry a 5G NR codeword in {self.mode.name}")

    @property
    def frame_bits(self) -> int:
        """n: coded bits the budget carries."""
        return self.channel_symbols * self.mode.bits_per_real_symbol

    @property
    def codeword_info_bits(self) -> int:
        """k: the LDPC code's information bits (payload and CRC)."""
        return math.floor(self.frame_bits * self.mode.code_rate)

    @property
    def info_bits(self) -> int:
        """Payload bits per image (what the source coder may use)."""
        return self.codeword_info_bits - CRC_BITS

    def to_dict(self) -> dict:
        return {"mode": self.mode.name, "modulation": self.mode.modulation, "code_rate": self.mode.rate,
                "code": f"5G NR LDPC (Sionna), k={self.codeword_info_bits} incl. {CRC}, n={self.frame_bits}",
                "codewords_per_image": 1, "info_bits_per_image": self.info_bits, "filler_bits_per_image": 0,
                "real_channel_uses_per_image": self.channel_symbols}


@dataclass(frozen=True)
class _Blocks:
    crc_encoder: object
    crc_decoder: object
    encoder: object
    decoder: object
    scrambler: object
    descrambler: object
    mapper: object
    demapper: object


@lru_cache(maxsize=None)
def _blocks(k: int, n: int, bits_per_complex_symbol: int) -> _Blocks:
    from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.fec.scrambling import Descrambler, TB5GScrambler
    from sionna.phy.mapping import Demapper, Mapper

    crc_encoder = CRCEncoder(CRC)
    encoder = LDPC5GEncoder(k, n, num_bits_per_symbol=bits_per_complex_symbol)
    scrambler = TB5GScrambler(binary=True)
    return _Blocks(crc_encoder, CRCDecoder(crc_encoder), encoder,
                   LDPC5GDecoder(encoder, cn_update=CHECK_NODE_UPDATE, num_iter=ITERATIONS_PER_CHECK, return_state=True), scrambler,
                   Descrambler(scrambler, binary=False), Mapper("qam", bits_per_complex_symbol),
                   Demapper("app", "qam", bits_per_complex_symbol))


def frame_plan(mode: LinkMode, channel_symbols: int) -> FramePlan:
    """The plan for ``mode`` at a budget of ``channel_symbols`` real symbols per image (ValueError if none fits)."""
    return FramePlan(mode, channel_symbols)


def _blocks_of(plan: FramePlan) -> _Blocks:
    return _blocks(plan.codeword_info_bits, plan.frame_bits, 2 * plan.mode.bits_per_real_symbol)


def transmit(plan: FramePlan, info_bits: np.ndarray) -> np.ndarray:
    """Sender: payload bits [N, plan.info_bits] (0/1) -> real channel symbols [N, channel_symbols] float32."""
    info_bits = np.asarray(info_bits)
    if info_bits.ndim != 2 or info_bits.shape[1] != plan.info_bits:
        raise ValueError(f"expected payload bits [N, {plan.info_bits}], got shape {info_bits.shape}")
    blocks = _blocks_of(plan)
    coded = blocks.encoder(blocks.crc_encoder(torch.from_numpy(info_bits.astype(np.float32))))
    symbols = blocks.mapper(blocks.scrambler(coded))                      # [N, n / 2b] complex, Es = 1
    return (torch.view_as_real(symbols).reshape(len(info_bits), -1) * math.sqrt(2.0)).numpy().astype(np.float32)


def receive(plan: FramePlan, received: np.ndarray, noise_variance: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Receiver: noisy real symbols [N, channel_symbols] -> (payload bits [N, info_bits] uint8, delivered [N] bool).

    ``noise_variance``: per real symbol, one number or one per symbol [N, channel_symbols] (after fading;
    the two real symbols of a complex one share it).
    """
    received = np.asarray(received, dtype=np.float32)
    if received.ndim != 2 or received.shape[1] != plan.channel_symbols:
        raise ValueError(f"expected received symbols [N, {plan.channel_symbols}], got shape {received.shape}")
    blocks = _blocks_of(plan)
    y = torch.view_as_complex(torch.from_numpy(received / math.sqrt(2.0)).reshape(len(received), -1, 2).contiguous())
    noise = torch.as_tensor(np.asarray(noise_variance, dtype=np.float32))
    llrs = blocks.descrambler(blocks.demapper(y, noise[:, 0::2] if noise.ndim == 2 else noise))
    return _decode_until_crc(blocks, llrs)


def _decode_until_crc(blocks: _Blocks, llrs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """BP on every frame, ITERATIONS_PER_CHECK at a time from the decoder's state [N, edges]; a frame stops
    once its CRC passes. An undelivered frame's bits are the last hard decisions (not to be used)."""
    count = llrs.shape[0]
    delivered = torch.zeros(count, dtype=torch.bool)
    active, state, payload = torch.arange(count), None, None
    for _ in range(MAX_ITERATIONS // ITERATIONS_PER_CHECK):
        estimate, state = blocks.decoder(llrs[active], msg_v2c=state)
        payload_now, crc_ok = blocks.crc_decoder(estimate)
        crc_ok = crc_ok.reshape(-1).bool()
        if payload is None:
            payload = torch.zeros(count, payload_now.shape[-1])
        payload[active] = payload_now
        delivered[active[crc_ok]] = True
        active, state = active[~crc_ok], state[~crc_ok]
        if len(active) == 0:
            break
    return payload.numpy().astype(np.uint8), delivered.numpy()
