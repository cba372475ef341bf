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
KIND_MASK = 1  # a 1-bit mask of every masked weight (MCE-PL)
KIND_WEIGHTS = 2  # fp32 weights: dense, or a 1-bit mask + the kept values (`encode_weights`)
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


def weights_payload_size(numel: int, kept: int | None) -> int:
    """Bytes of a weights payload: 4 * numel dense (kept None), else the smaller of the
    sparse form (mask + 4 bytes per kept value) and dense."""
    dense = 4 * numel
    return dense if kept is None else min(dense, packed_size(numel) + 4 * kept)


def encode_weights(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """fp32 weights for the wire: dense, or the 1-bit mask followed by the kept values in
    order when that is smaller. The receiver tells the two apart by length alone (a sparse
    payload is strictly shorter than 4 * numel); dense is used only when the mask can be
    read back from it exactly (no kept value is 0.0)."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if mask is None:
        return flat.view(np.uint8)
    keep = np.asarray(mask, dtype=bool).reshape(-1)
    kept = flat[keep]
    dense_ok = not np.any(kept == 0.0) and not np.any(flat[~keep] != 0.0)
    if dense_ok and weights_payload_size(flat.size, int(keep.sum())) == 4 * flat.size:
        return flat.view(np.uint8)
    return np.concatenate([pack_bits(keep), kept.view(np.uint8)])


def decode_weights(payload: np.ndarray, numel: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `encode_weights`: the dense fp32 values (0 off the mask; a new array, one
    copy of the payload) and the mask (for a dense payload, its non-zero entries)."""
    body = np.ascontiguousarray(payload, dtype=np.uint8)
    if body.size == 4 * numel:
        values = body.view(np.float32).copy()
        return values, values != 0.0
    head = packed_size(numel)
    keep = unpack_bits(body[:head], numel)
    kept = body[head:].view(np.float32) if (body.size - head) % 4 == 0 else np.empty(0)
    if kept.size != int(keep.sum()) or body.size != head + 4 * kept.size:
        raise ProtocolError(f"weights payload of {payload.size} bytes does not match its mask "
                            f"({int(keep.sum())} kept of {numel})")
    values = np.zeros(numel, dtype=np.float32)
    values[keep] = kept
    return values, keep


def paper_bits(numel: int, reals: int, mask: bool) -> int:
    """The paper's accounting of one message: 32 bits per real value, 1 bit per mask entry."""
    return 32 * reals + (numel if mask else 0)


def ring_allreduce_bytes(nbytes: int, world: int) -> int:
    """Bytes one rank sends in a ring all-reduce of `nbytes`: 2 (world - 1) chunks of
    ceil(nbytes / world) (reduce-scatter, then all-gather)."""
    if world <= 1:
        return 0
    return 2 * (world - 1) * -(-nbytes // world)


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


def _header_problems(h: Header, round: int, sender: int, kind: int) -> list[str]:
    """What is wrong with a header, given the round, sender and kind expected."""
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
    return problems


def _raise(sender: int, problems: list[str]) -> None:
    if problems:
        raise ProtocolError(f"bad frame from rank {sender}: {'; '.join(problems)}")


def check_header(head: np.ndarray, *, round: int, sender: int, kind: int = KIND_MASK) -> int:
    """Validate a header received on its own; return the payload length it announces."""
    h = decode_header(head)
    _raise(sender, _header_problems(h, round, sender, kind))
    return h.payload_len


def check_frame(
    frame: np.ndarray, *, round: int, sender: int, payload_len: int | None,
    kind: int = KIND_MASK
) -> np.ndarray:
    """Validate a received frame against what was expected; return its payload view.

    payload_len None accepts any length the header states (variable-size payloads)."""
    h = decode_header(frame)
    problems = _header_problems(h, round, sender, kind)
    expected = h.payload_len if payload_len is None else payload_len
    if h.payload_len != expected or frame.size != HEADER_BYTES + expected:
        problems.append(f"payload length {h.payload_len} in a {frame.size}-byte frame, "
                        f"expected {expected}")
    payload = frame[HEADER_BYTES:]
    if not problems and zlib.crc32(payload.data) & 0xFFFFFFFF != h.crc32:
        problems.append("CRC32 mismatch (corrupted payload)")
    _raise(sender, problems)
    return payload
