"""Bit packing of 0/1 torch tensors for the wire: numpy.packbits on the CPU (about 10x
faster there), a torch kernel on CUDA so that masks cross to the host already packed.
Both use numpy's big-endian bit order, so any rank can read any other's payload."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

_WEIGHTS_CACHE: dict[torch.device, Tensor] = {}


def _bit_weights(device: torch.device) -> Tensor:
    if device not in _WEIGHTS_CACHE:
        _WEIGHTS_CACHE[device] = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8,
                                              device=device)
    return _WEIGHTS_CACHE[device]


def pack_bits(flat: Tensor) -> np.ndarray:
    """A 1-D 0/1 tensor on any device -> host uint8 bytes, 8 entries per byte."""
    if flat.device.type == "cpu":
        return np.packbits(flat.numpy().astype(bool, copy=False))
    return pack_bits_torch(flat).cpu().numpy()


def pack_bits_torch(flat: Tensor) -> Tensor:
    """The packing kernel on `flat`'s own device (used on CUDA; testable on the CPU)."""
    bits = flat.to(torch.uint8)
    pad = (-bits.numel()) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros(pad)])
    return (bits.view(-1, 8) * _bit_weights(bits.device)).sum(dim=1, dtype=torch.uint8)


def unpack_bits(packed: np.ndarray, count: int, device: torch.device) -> Tensor:
    """Host uint8 bytes -> the first `count` bits as a uint8 0/1 tensor on `device`."""
    if device.type == "cpu":
        return torch.from_numpy(np.unpackbits(packed, count=count))
    return unpack_bits_torch(torch.from_numpy(packed).to(device), count)


def unpack_bits_torch(packed: Tensor, count: int) -> Tensor:
    """The unpacking kernel on `packed`'s own device (used on CUDA; testable on the CPU):
    the first `count` bits of each row of `packed` (1-D: one payload; 2-D: one per row)."""
    bits = (packed.unsqueeze(-1) & _bit_weights(packed.device)).ne(0)
    return bits.flatten(-2)[..., :count].to(torch.uint8)


def count_ones(payloads: Sequence[np.ndarray], count: int, device: torch.device) -> Tensor:
    """Per entry, how many of the packed payloads hold a one there, on `device`.

    Counts are small integers (uint8 below 256 payloads), exact, so their mean is the same
    float whatever the order. On CUDA all payloads cross to the device in one copy.
    """
    dtype = torch.uint8 if len(payloads) < 256 else torch.int32
    if device.type == "cpu":
        counts = torch.zeros(count, dtype=dtype)
        for packed in payloads:
            counts += unpack_bits(packed, count, device)
        return counts
    return count_ones_torch(torch.from_numpy(np.stack(payloads)).to(device), count, dtype)


def count_ones_torch(packed: Tensor, count: int, dtype: torch.dtype = torch.int32) -> Tensor:
    """The counting kernel on `packed`'s own device: rows are payloads (used on CUDA)."""
    return unpack_bits_torch(packed, count).sum(dim=0, dtype=dtype)
