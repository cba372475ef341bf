"""Point-to-point exchange with graph neighbours: the only module that sends and receives.

Each round a rank frames its payload once, posts one send to and one receive from every
neighbour (all posted before any wait: no ordering deadlock, never a send to itself), waits
for all, then checks every received header. A neighbour that is gone or silent raises
PeerError naming it. No global barrier: a rank waits only for its neighbours.
Bytes are counted as what is handed to torch.distributed, header included. When every
rank's payload has the same length (masks or dense weights of the one shared model),
receive buffers are sized from the rank's own frame and a neighbour whose frame differs is
reported by the header check. When lengths differ (sparse weights), the 32-byte headers go
first and the payloads follow in a second batch sized from them: the same bytes, two
latencies. FedAvg's averaging is one all-reduce, counted as a ring all-reduce's traffic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist

from mcepl_dist.codec import (
    HEADER_BYTES,
    KIND_MASK,
    check_frame,
    check_header,
    encode_frame,
    ring_allreduce_bytes,
)
from mcepl_dist.errors import PeerError
from mcepl_dist.timing import PhaseTimer


@dataclass
class CommCounters:
    """Running totals of what this rank put on and took off the wire."""

    bytes_sent: int = 0
    bytes_recv: int = 0
    msgs_sent: int = 0
    msgs_recv: int = 0

    def snapshot(self) -> dict[str, int]:
        return {"bytes_sent": self.bytes_sent, "bytes_recv": self.bytes_recv,
                "msgs_sent": self.msgs_sent, "msgs_recv": self.msgs_recv}


class Transport(Protocol):
    """What an algorithm and the per-rank loop see: send one payload to all neighbours and
    get one back from each."""

    @property
    def neighbors(self) -> Sequence[int]:
        """Ranks this one exchanges with."""
        ...

    counters: CommCounters

    def exchange(self, round: int, payload: np.ndarray, *, kind: int = KIND_MASK,
                 sizes_differ: bool = False) -> dict[int, np.ndarray]:
        """Send `payload` (uint8) to every neighbour; return each neighbour's payload."""
        ...

    def all_reduce_mean(self, round: int, values: np.ndarray) -> np.ndarray:
        """The mean over all ranks of a float32 vector (FedAvg's server step)."""
        ...


class PeerTransport:
    """Neighbour exchange over an initialised torch.distributed process group."""

    def __init__(self, rank: int, neighbors: Sequence[int], timer: PhaseTimer,
                 device: torch.device | None = None) -> None:
        if rank in neighbors:
            raise ValueError(f"rank {rank} lists itself as a neighbour")
        self.rank = rank
        self._neighbors = list(neighbors)
        self.timer = timer
        self.device = device or torch.device("cpu")  # cuda only for the nccl backend
        self.counters = CommCounters()

    @property
    def neighbors(self) -> Sequence[int]:
        return self._neighbors

    def exchange(self, round: int, payload: np.ndarray, *, kind: int = KIND_MASK,
                 sizes_differ: bool = False) -> dict[int, np.ndarray]:
        """One synchronous round with the neighbours (see the module docstring)."""
        with self.timer.phase("pack"):
            frame = encode_frame(payload, round=round, sender=self.rank, kind=kind)
            send = torch.from_numpy(frame).to(self.device)
        if sizes_differ:
            frames = self._two_phase(round, send, kind)
        else:
            frames = {j: torch.empty(frame.size, dtype=torch.uint8, device=self.device)
                      for j in self.neighbors}
            with self.timer.phase("comm"):
                self._send_recv(round, send, frames)
        with self.timer.phase("pack"):
            out = {j: check_frame(buf.cpu().numpy(), round=round, sender=j, kind=kind,
                                  payload_len=None if sizes_differ else payload.size)
                   for j, buf in frames.items()}
        n = len(self.neighbors)
        self.counters.bytes_sent += frame.size * n
        self.counters.bytes_recv += sum(buf.numel() for buf in frames.values())
        self.counters.msgs_sent += n
        self.counters.msgs_recv += n
        return out

    def _two_phase(self, round: int, send: torch.Tensor, kind: int) -> dict[int, torch.Tensor]:
        """Headers first, then payloads into buffers sized from them; returns whole frames."""
        heads = {j: torch.empty(HEADER_BYTES, dtype=torch.uint8, device=self.device)
                 for j in self.neighbors}
        with self.timer.phase("comm"):
            self._send_recv(round, send[:HEADER_BYTES], heads)
        lengths = {j: check_header(h.cpu().numpy(), round=round, sender=j, kind=kind)
                   for j, h in heads.items()}
        bodies = {j: torch.empty(lengths[j], dtype=torch.uint8, device=self.device)
                  for j in self.neighbors}
        with self.timer.phase("comm"):
            self._send_recv(round, send[HEADER_BYTES:], bodies)
        return {j: torch.cat([heads[j], bodies[j]]) for j in self.neighbors}

    def all_reduce_mean(self, round: int, values: np.ndarray) -> np.ndarray:
        """The mean over all ranks of a float32 vector (see the module docstring)."""
        with self.timer.phase("pack"):
            # A copy: the all-reduce works in place and must not touch the caller's array.
            t = torch.tensor(values, dtype=torch.float32, device=self.device)
        with self.timer.phase("comm"):
            try:
                dist.all_reduce(t)
            except RuntimeError as exc:
                others = [r for r in range(dist.get_world_size()) if r != self.rank]
                raise PeerError(round, others, str(exc)) from exc
        world = dist.get_world_size()
        sent = ring_allreduce_bytes(t.numel() * 4, world)
        self.counters.bytes_sent += sent
        self.counters.bytes_recv += sent
        self.counters.msgs_sent += 2 * (world - 1)
        self.counters.msgs_recv += 2 * (world - 1)
        with self.timer.phase("pack"):
            return (t / world).cpu().numpy()

    def _send_recv(self, round: int, send: torch.Tensor, recv: dict[int, torch.Tensor]) -> None:
        if not self.neighbors:
            return
        ops = [dist.P2POp(dist.isend, send, j) for j in self.neighbors]
        ops += [dist.P2POp(dist.irecv, buf, j) for j, buf in recv.items()]
        reqs, peers = self._post(round, ops)
        for req, peer in zip(reqs, peers, strict=True):
            try:
                req.wait()
            except RuntimeError as exc:
                raise PeerError(round, peer, str(exc)) from exc

    def _post(self, round: int, ops: list[dist.P2POp]) -> tuple[list[Any], list[Any]]:
        """Post every send and receive; each request is paired with the peer it waits on."""
        if self.device.type == "cuda":  # nccl coalesces the batch into one request
            try:
                reqs = dist.batch_isend_irecv(ops)
            except RuntimeError as exc:
                raise PeerError(round, list(self.neighbors), str(exc)) from exc
            return reqs, ([op.peer for op in ops] if len(reqs) == len(ops)
                          else [list(self.neighbors)] * len(reqs))
        # gloo: post one at a time, so a peer that is already gone is named
        posted = []
        for op in ops:
            try:
                posted.append(op.op(op.tensor, op.peer))
            except RuntimeError as exc:
                raise PeerError(round, op.peer, str(exc)) from exc
        return posted, [op.peer for op in ops]
