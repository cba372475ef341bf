"""Bit packing of masks and the framed wire format (pure numpy, no torch).

A frame is a fixed 32-byte little-endian header followed by the payload:

    magic b"MCEP" | version u16 | kind u16 | round u64 | sender u32 | payload_len u32
    | crc32 u32 | reserved u32

A receiver knows what it expects (round, sender, length) and `check_frame` rejects any
mismatch with an error naming the peer, so a stale, misrouted, truncated or corrupted
message is never used.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcepl_dist.errors import ProtocolError

MAGIC = b"MCEP"
VERSION = 1
KIND_MASK = 1
_HEADER = struct.Struct("<4sHHQIIII")
HEADER_BYTES = _HEADER.size  # 32


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a 0/1 array (any shape) into uint8, 8 entries per byte, big-endian bit order."""
    return np.packbits(np.asarray(bits, dtype=bool).reshape(-1))


def unpack_bits(packed: np.ndarray, count: int) -> np.ndarray:
    """Inverse of `pack_bits`: the first `count` entries as a bool vector."""
    if packed.size * 8 < count:
        raise ValueError(f"{packed.size} bytes hold fewer than {count} bits")
    return np.unpackbits(packed, count=count).astype(bool)


def packed_size(count: int) -> int:
    """Bytes needed for `count` bits: ceil(count / 8)."""
    return (count + 7) // 8


def frame_bytes(payload_len: int) -> int:
    """Size of one frame on the wire for a payload of `payload_len` bytes."""
    return HEADER_BYTES + payload_len


def pack_masks(masks: Sequence[np.ndarray]) -> np.ndarray:
    """All layers' masks, in order, concatenated and packed at 1 bit per entry.

    The reference definition of a mask payload: strategies build the same bytes on the
    tensors' own device (algorithms/bits.py), and the tests hold the two equal.
    """
    flat = np.concatenate([np.asarray(m, dtype=bool).reshape(-1) for m in masks])
    return np.packbits(flat)


def unpack_masks(packed: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Inverse of `pack_masks` for the given layer shapes."""
    sizes = [int(np.prod(s)) for s in shapes]
    flat = unpack_bits(packed, sum(sizes))
    out, start = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


@dataclass(frozen=True)
class Header:
    """The decoded fixed header of one frame."""

    magic: bytes
    version: int
    kind: int
    round: int
    sender: int
    payload_len: int
    crc32: int


def encode_frame(
    payload: np.ndarray, *, round: int, sender: int, kind: int = KIND_MASK
) -> np.ndarray:
    """Header + payload as one contiguous uint8 buffer, ready to hand to the transport."""
    body = np.ascontiguousarray(payload, dtype=np.uint8).reshape(-1)
    crc = zlib.crc32(body.data) & 0xFFFFFFFF
    header = _HEADER.pack(MAGIC, VERSION, kind, round, sender, body.size, crc, 0)
    frame = np.empty(HEADER_BYTES + body.size, dtype=np.uint8)
    frame[:HEADER_BYTES] = np.frombuffer(header, dtype=np.uint8)
    frame[HEADER_BYTES:] = body
    return frame


def decode_header(frame: np.ndarray) -> Header:
    """Parse the header of a received frame (no checks)."""
    if frame.size < HEADER_BYTES:
        raise ProtocolError(f"frame of {frame.size} bytes is shorter than the header")
    fields = _HEADER.unpack(frame[:HEADER_BYTES].tobytes())
    return Header(*fields[:7])


def check_frame(
    frame: np.ndarray, *, round: int, sender: int, payload_len: int, kind: int = KIND_MASK
) -> np.ndarray:
    """Validate a received frame against what was expected; return its payload view."""
    h = decode_header(frame)
    problems = []
    if h.magic != MAGIC:
        problems.append(f"bad magic {h.magic!r}")
    if h.version != VERSION:
        problems.append(f"format version {h.version}, expected {VERSION}")
    if h.kind != kind:
        problems.append(f"message kind {h.kind}, expected {kind}")
    if h.round != round:
        problems.append(f"round {h.round}, expected {round}")
    if h.sender != sender:
        problems.append(f"sender field {h.sender}")
    if h.payload_len != payload_len or frame.size != HEADER_BYTES + payload_len:
        problems.append(f"payload length {h.payload_len} in a {frame.size}-byte frame, "
                        f"expected {payload_len}")
    payload = frame[HEADER_BYTES:]
    if not problems and zlib.crc32(payload.data) & 0xFFFFFFFF != h.crc32:
        problems.append("CRC32 mismatch (corrupted payload)")
    if problems:
        raise ProtocolError(f"bad frame from rank {sender}: {'; '.join(problems)}")
    return payload
