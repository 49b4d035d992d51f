"""Container v1: a 16-byte header in front of the range coder's words (docs/bitstream.md)."""

import struct
import zlib
from dataclasses import dataclass
from typing import Iterator, Tuple

from sc2deploy.errors import CodecError

MAGIC = b"S2"
VERSION = 1
HEADER = struct.Struct("<2sBBHHHIH")  # magic, version, C, H, W, prior digest, payload len, crc
HEADER_SIZE = HEADER.size  # 16
MAX_SYMBOLS = 1 << 24  # refuse absurd shapes before allocating anything


@dataclass(frozen=True)
class Header:
    """What the header says about the stream."""

    shape: Tuple[int, int, int]
    prior_digest: int  # first 16 bits of the prior tables' sha256
    payload_length: int


def prior_digest16(hex_digest: str) -> int:
    return int(hex_digest[:4], 16)


def _checksum(head: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(head)) & 0xFFFF


def pack(shape: Tuple[int, int, int], prior_digest: int, payload: bytes) -> bytes:
    """Header + payload for a latent of ``shape`` = (C, H, W)."""
    c, h, w = shape
    if not (1 <= c <= 255 and 1 <= h <= 0xFFFF and 1 <= w <= 0xFFFF):
        raise CodecError(f"latent shape {shape} cannot be stored: need 1 <= C <= 255 and "
                         "1 <= H, W <= 65535")
    head = HEADER.pack(MAGIC, VERSION, c, h, w, prior_digest, len(payload), 0)[:-2]
    return head + struct.pack("<H", _checksum(head, payload)) + payload


def unpack(data: bytes) -> Tuple[Header, bytes]:
    """Parse and check one container occupying all of ``data``."""
    header, payload, rest = _split(data)
    if rest:
        raise CodecError(f"{len(rest)} unexpected bytes after the container's payload")
    return header, payload


def iter_containers(data: bytes) -> Iterator[Tuple[Header, bytes]]:
    """Parse a batch file: containers one after another."""
    while data:
        header, payload, data = _split(data)
        yield header, payload


def _split(data: bytes):
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise CodecError(f"truncated stream: {len(data)} bytes, a header alone is {HEADER_SIZE}")
    magic, version, c, h, w, digest, length, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CodecError(f"not an sc2deploy stream: magic {magic!r}, expected {MAGIC!r}")
    if version > VERSION:
        raise CodecError(f"stream has container version {version}; this sc2deploy reads "
                         f"version {VERSION}: upgrade sc2deploy to decode it")
    if version != VERSION:
        raise CodecError(f"unknown container version {version}")
    if c == 0 or h == 0 or w == 0 or c * h * w > MAX_SYMBOLS:
        raise CodecError(f"header declares an invalid latent shape ({c}, {h}, {w}); "
                         f"at most {MAX_SYMBOLS} symbols are accepted")
    if length % 4:
        raise CodecError(f"payload length {length} is not a whole number of 32-bit words")
    end = HEADER_SIZE + length
    if len(data) < end:
        raise CodecError(f"truncated stream: header declares {length} payload bytes, "
                         f"{len(data) - HEADER_SIZE} present")
    payload = data[HEADER_SIZE:end]
    if _checksum(data[:HEADER_SIZE - 2], payload) != crc:
        raise CodecError("checksum mismatch: the stream is corrupt")
    return Header((c, h, w), digest, length), payload, data[end:]
