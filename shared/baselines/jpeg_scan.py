"""JPEG source coding that sends only the entropy-coded scan: baseline JPEG (Pillow/libjpeg).

A whole JPEG file of a 32 x 32 image is ~650 bytes of headers (quantisation and Huffman tables)
before any image data: more than the whole channel budget. Both ends of a fixed link know the
tables, so only the scan is sent. The sender and receiver agree on:

- the quality ladder :data:`QUALITY_LADDER` (Pillow's ``quality`` fixes the IJG quantisation
  tables), the standard Huffman tables (``optimize=False``: image-specific tables would have to
  be sent), 4:2:0 chroma subsampling for colour, baseline (non-progressive) coding;
- the image size and channel count (fixed by the preset).

The receiver rebuilds the headers from (quality, size, channels) and appends the scan.

Payload frame (a bit string of a fixed budget, MSB first):

    [quality index: 4 bits][scan length in bytes: ceil(log2(budget_bytes + 1)) bits][scan bytes][zero fill]

Images are uint8 [C, H, W] (C = 1 or 3); bits are uint8 0/1 arrays.
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

# Pillow quality values, lowest first; the index travels in 4 bits. Denser at the low end, where
# the small channel budgets of this simulator leave the choice.
QUALITY_LADDER = (1, 2, 3, 5, 7, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75, 90)
QUALITY_INDEX_BITS = 4
CHROMA_SUBSAMPLING = 2                  # Pillow's code for 4:2:0
_SOS = b"\xff\xda"                      # start-of-scan marker
_EOI = b"\xff\xd9"                      # end-of-image marker

assert len(QUALITY_LADDER) <= 1 << QUALITY_INDEX_BITS


class JpegDecodeError(ValueError):
    """The payload is not a decodable scan (bad header fields, or libjpeg rejected the data)."""


def _check_image(image_u8: np.ndarray) -> np.ndarray:
    image_u8 = np.asarray(image_u8)
    if image_u8.dtype != np.uint8 or image_u8.ndim != 3 or image_u8.shape[0] not in (1, 3):
        raise ValueError(f"expected a uint8 image [C, H, W] with C = 1 or 3, got {image_u8.dtype} {image_u8.shape}")
    return image_u8


def _to_pil(image_u8: np.ndarray) -> Image.Image:
    return Image.fromarray(image_u8[0]) if image_u8.shape[0] == 1 else Image.fromarray(image_u8.transpose(1, 2, 0))


def _jpeg_file(image_u8: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    _to_pil(image_u8).save(buffer, "JPEG", quality=quality, subsampling=CHROMA_SUBSAMPLING, optimize=False,
                           progressive=False)
    return buffer.getvalue()


def _split(jpeg: bytes) -> tuple[bytes, bytes]:
    """A baseline JPEG file -> (headers up to and including the SOS segment, entropy-coded scan)."""
    start = jpeg.find(_SOS)
    if start < 0 or not jpeg.endswith(_EOI):
        raise ValueError("not a single-scan baseline JPEG")
    header_end = start + 2 + int.from_bytes(jpeg[start + 2:start + 4], "big")
    return jpeg[:header_end], jpeg[header_end:-len(_EOI)]


@lru_cache(maxsize=None)
def known_header(quality: int, channels: int, height: int, width: int) -> bytes:
    """The headers both ends derive from (quality, C, H, W): those of any image of that shape."""
    return _split(_jpeg_file(np.zeros((channels, height, width), dtype=np.uint8), quality))[0]


def encode_scan(image_u8: np.ndarray, quality: int) -> bytes:
    """The entropy-coded scan of ``image_u8`` [C, H, W] at Pillow ``quality`` (byte-stuffed, as in the file)."""
    image_u8 = _check_image(image_u8)
    header, scan = _split(_jpeg_file(image_u8, quality))
    if header != known_header(quality, *image_u8.shape):
        raise AssertionError("the JPEG headers depend on the image content; the receiver could not rebuild them")
    return scan


def decode_scan(scan: bytes, quality: int, channels: int, height: int, width: int) -> np.ndarray:
    """Receiver: known headers + ``scan`` -> uint8 [C, H, W]; :class:`JpegDecodeError` if libjpeg fails."""
    try:
        with Image.open(io.BytesIO(known_header(quality, channels, height, width) + scan + _EOI)) as image:
            image.load()
            pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except (OSError, SyntaxError, ValueError) as err:     # Pillow's errors for broken or truncated data
        raise JpegDecodeError(f"libjpeg could not decode the scan: {err}") from None
    if pixels.shape[:2] != (height, width):
        raise JpegDecodeError(f"decoded size {pixels.shape[:2]} != ({height}, {width})")
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1).copy()


def length_field_bits(budget_bits: int) -> int:
    """Bits of the scan-length field: enough to count every whole byte of the budget."""
    return max(1, (budget_bits // 8).bit_length())


def header_bits(budget_bits: int) -> int:
    """Framing overhead per image: quality index + scan length."""
    return QUALITY_INDEX_BITS + length_field_bits(budget_bits)


def _uint_bits(value: int, width: int) -> np.ndarray:
    return ((value >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8)


def _bits_uint(bits: np.ndarray) -> int:
    return int(bits.astype(np.int64) @ (1 << np.arange(len(bits) - 1, -1, -1))) if len(bits) else 0


def pack_image(image_u8: np.ndarray, budget_bits: int) -> tuple[np.ndarray, int] | None:
    """The payload frame [budget_bits] (uint8 0/1) at the highest ladder quality that fits, and that quality.

    None when even the lowest quality does not fit: the image cannot be sent in this budget.
    """
    image_u8 = _check_image(image_u8)
    if budget_bits < 1:
        raise ValueError(f"the payload budget must be a positive number of bits, got {budget_bits}")
    overhead = header_bits(budget_bits)
    for index in range(len(QUALITY_LADDER) - 1, -1, -1):      # best quality first
        scan = encode_scan(image_u8, QUALITY_LADDER[index])
        if overhead + 8 * len(scan) <= budget_bits:
            frame = np.zeros(budget_bits, dtype=np.uint8)
            fields = np.concatenate([_uint_bits(index, QUALITY_INDEX_BITS),
                                     _uint_bits(len(scan), length_field_bits(budget_bits)),
                                     np.unpackbits(np.frombuffer(scan, dtype=np.uint8))])
            frame[:len(fields)] = fields
            return frame, QUALITY_LADDER[index]
    return None


def _header_fields(frame: np.ndarray) -> tuple[int, int]:
    """(quality index, scan length in bytes) from a payload frame's header."""
    length_bits = length_field_bits(len(frame))
    return (_bits_uint(frame[:QUALITY_INDEX_BITS]),
            _bits_uint(frame[QUALITY_INDEX_BITS:QUALITY_INDEX_BITS + length_bits]))


def used_bits(frame: np.ndarray) -> int:
    """Bits of a payload frame that carry JPEG data: the header fields and the scan."""
    return header_bits(len(frame)) + 8 * _header_fields(np.asarray(frame, dtype=np.uint8))[1]


def unpack_image(frame: np.ndarray, channels: int, height: int, width: int) -> tuple[np.ndarray, int]:
    """Receiver: payload frame [budget_bits] -> (uint8 [C, H, W], quality); :class:`JpegDecodeError` if it is not valid."""
    frame = np.asarray(frame, dtype=np.uint8)
    budget_bits = len(frame)
    index, length = _header_fields(frame)
    start = header_bits(budget_bits)
    if index >= len(QUALITY_LADDER):
        raise JpegDecodeError(f"quality index {index} is not on the ladder")
    if start + 8 * length > budget_bits:
        raise JpegDecodeError(f"scan length {length} bytes overruns the {budget_bits}-bit frame")
    scan = np.packbits(frame[start:start + 8 * length]).tobytes()
    quality = QUALITY_LADDER[index]
    return decode_scan(scan, quality, channels, height, width), quality
