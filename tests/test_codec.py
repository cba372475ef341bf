"""Bit packing (numpy and torch) and the framed wire format."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
import torch

from mcepl_dist import codec
from mcepl_dist.algorithms import bits
from mcepl_dist.errors import ProtocolError
from mcepl_dist.model import layer_shapes

# --------------------------------------------------------------------------------------
# bit packing


@pytest.mark.parametrize("count", [1, 7, 8, 9, 1_227_328])
def test_pack_unpack_round_trip(count: int) -> None:
    rng = np.random.default_rng(count)
    bits_in = rng.random(count) < 0.3
    packed = codec.pack_bits(bits_in)
    assert packed.dtype == np.uint8
    assert packed.size == math.ceil(count / 8) == codec.packed_size(count)
    out = codec.unpack_bits(packed, count)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, bits_in)


def test_pack_bits_big_endian_by_hand() -> None:
    # 1,0,1,1,0,0,0,0 | 1 -> 0b10110000 = 176, 0b10000000 = 128
    packed = codec.pack_bits(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1]))
    assert packed.tolist() == [176, 128]
    assert codec.unpack_bits(packed, 9).astype(int).tolist() == [1, 0, 1, 1, 0, 0, 0, 0, 1]


def test_pack_bits_accepts_float_masks_of_any_shape() -> None:
    m = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    assert codec.pack_bits(m).tolist() == [0b10100100]


def test_unpack_bits_too_few_bytes_raises() -> None:
    with pytest.raises(ValueError):
        codec.unpack_bits(np.zeros(1, dtype=np.uint8), 9)


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 16, 17])
def test_packed_size(count: int) -> None:
    assert codec.packed_size(count) == -(-count // 8)


def test_pack_masks_unpack_masks_several_shapes() -> None:
    rng = np.random.default_rng(1)
    shapes = [(3, 1, 5, 5), (7,), (2, 3), (1, 1), (4, 3, 3)]
    masks = [rng.random(s) < 0.5 for s in shapes]
    packed = codec.pack_masks(masks)
    total = sum(math.prod(s) for s in shapes)  # 75 + 7 + 6 + 1 + 36 = 125
    assert total == 125
    assert packed.size == 16
    np.testing.assert_array_equal(packed, np.packbits(np.concatenate([m.reshape(-1)
                                                                      for m in masks])))
    out = codec.unpack_masks(packed, shapes)
    assert len(out) == len(shapes)
    for got, exp, shape in zip(out, masks, shapes, strict=True):
        assert got.shape == shape
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("count", [1, 7, 9, 64, 1001])
def test_torch_pack_bits_equals_numpy_packbits(count: int) -> None:
    gen = torch.Generator().manual_seed(count)
    flat = (torch.rand(count, generator=gen) < 0.4).float()
    packed = bits.pack_bits(flat)
    expected = np.packbits(flat.numpy().astype(bool))
    assert packed.dtype == np.uint8
    np.testing.assert_array_equal(packed, expected)
    out = bits.unpack_bits(packed, count, torch.device("cpu"))
    assert out.dtype == torch.uint8
    assert torch.equal(out.float(), flat)


def test_torch_pack_bits_uint8_and_bool_inputs() -> None:
    flat = torch.tensor([1, 0, 1, 1, 0, 0, 0, 0, 1], dtype=torch.uint8)
    assert bits.pack_bits(flat).tolist() == [176, 128]
    assert bits.pack_bits(flat.bool()).tolist() == [176, 128]


# --------------------------------------------------------------------------------------
# frames


def _frame(payload_size: int = 21, round: int = 5, sender: int = 3) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    payload = np.random.default_rng(payload_size).integers(0, 256, payload_size, dtype=np.uint8)
    return payload, codec.encode_frame(payload, round=round, sender=sender)


def test_header_is_32_bytes() -> None:
    assert codec.HEADER_BYTES == 32
    payload, frame = _frame(0)
    assert frame.size == 32


def test_frame_layout_by_hand() -> None:
    payload = np.array([1, 2, 3], dtype=np.uint8)
    frame = codec.encode_frame(payload, round=7, sender=2)
    assert frame.dtype == np.uint8
    assert frame.size == 35
    assert frame[:4].tobytes() == b"MCEP"
    version, kind, rnd, sender, length, crc, reserved = struct.unpack(
        "<HHQIIII", frame[4:32].tobytes()
    )
    assert (version, kind, rnd, sender, length, reserved) == (1, 1, 7, 2, 3, 0)
    assert crc == zlib.crc32(bytes([1, 2, 3]))
    assert frame[32:].tolist() == [1, 2, 3]
    h = codec.decode_header(frame)
    assert (h.magic, h.round, h.sender, h.payload_len, h.crc32) == (b"MCEP", 7, 2, 3, crc)


def test_frame_round_trip() -> None:
    payload, frame = _frame(21, round=5, sender=3)
    out = codec.check_frame(frame, round=5, sender=3, payload_len=21)
    np.testing.assert_array_equal(out, payload)


def test_paper_model_frame_size() -> None:
    shapes = layer_shapes(1.0)
    sizes = [math.prod(s) for s in shapes]
    assert sizes == [4800, 204800, 819200, 196608, 1920]
    assert sum(sizes) == 1_227_328
    rng = np.random.default_rng(0)
    masks = [rng.random(s) < 0.3 for s in shapes]
    payload = codec.pack_masks(masks)
    assert payload.size == 153_416 == math.ceil(1_227_328 / 8)
    frame = codec.encode_frame(payload, round=1, sender=0)
    assert frame.size == 153_416 + 32
    out = codec.unpack_masks(codec.check_frame(frame, round=1, sender=0,
                                               payload_len=153_416), shapes)
    for got, exp in zip(out, masks, strict=True):
        np.testing.assert_array_equal(got, exp)


def _expect_error(frame: np.ndarray, *, round: int = 5, sender: int = 3, payload_len: int = 21,
                  match: str) -> str:
    with pytest.raises(ProtocolError, match=match) as info:
        codec.check_frame(frame, round=round, sender=sender, payload_len=payload_len)
    msg = str(info.value)
    assert f"rank {sender}" in msg
    return msg


def test_check_frame_wrong_round() -> None:
    _, frame = _frame()
    msg = _expect_error(frame, round=6, match="round")
    assert "5" in msg and "6" in msg


def test_check_frame_wrong_sender() -> None:
    _, frame = _frame(sender=3)
    msg = _expect_error(frame, sender=4, match="sender")
    assert "3" in msg


def test_check_frame_wrong_length() -> None:
    _, frame = _frame(21)
    _expect_error(frame, payload_len=22, match="length")


def test_check_frame_truncated() -> None:
    _, frame = _frame(21)
    _expect_error(frame[:-1], match="length")


def test_check_frame_shorter_than_header() -> None:
    _, frame = _frame(21)
    with pytest.raises(ProtocolError):
        codec.check_frame(frame[:10], round=5, sender=3, payload_len=21)


def test_check_frame_bad_magic() -> None:
    _, frame = _frame()
    bad = frame.copy()
    bad[0] = ord("X")
    _expect_error(bad, match="magic")


def test_check_frame_wrong_kind() -> None:
    payload = np.arange(21, dtype=np.uint8)
    frame = codec.encode_frame(payload, round=5, sender=3, kind=2)
    _expect_error(frame, match="kind")


@pytest.mark.parametrize("byte", [0, 10, 20])
def test_check_frame_flipped_payload_bit_fails_crc(byte: int) -> None:
    _, frame = _frame()
    bad = frame.copy()
    bad[32 + byte] ^= 0b0000_0100
    _expect_error(bad, match="CRC")
