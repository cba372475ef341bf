"""Point-to-point exchange with graph neighbours: the only module that sends and receives.

Each round a rank frames its payload once, posts one send to and one receive from every
neighbour (all posted before any wait: no ordering deadlock, never a send to itself), waits
for all, then checks every received header. A neighbour that is gone or silent raises
PeerError naming it. No global barrier: a rank waits only for its neighbours.
Bytes are counted as what is handed to torch.distributed, header included. Every rank's
payload has the same length (masks of the one shared model), so receive buffers are sized
from the rank's own frame; a neighbour whose frame differs is reported by the header check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist

from mcepl_dist.codec import check_frame, encode_frame
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

    def exchange(self, round: int, payload: np.ndarray) -> dict[int, np.ndarray]:
        """Send `payload` (uint8) to every neighbour; return each neighbour's payload."""
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

    def exchange(self, round: int, payload: np.ndarray) -> dict[int, np.ndarray]:
        """One synchronous round with the neighbours (see the module docstring)."""
        with self.timer.phase("pack"):
            frame = encode_frame(payload, round=round, sender=self.rank)
            send = torch.from_numpy(frame).to(self.device)
            recv = {j: torch.empty(frame.size, dtype=torch.uint8, device=self.device)
                    for j in self.neighbors}
        with self.timer.phase("comm"):
            self._send_recv(round, send, recv)
        with self.timer.phase("pack"):
            out = {j: check_frame(buf.cpu().numpy(), round=round, sender=j,
                                  payload_len=payload.size) for j, buf in recv.items()}
        n = len(self.neighbors)
        self.counters.bytes_sent += frame.size * n
        self.counters.bytes_recv += frame.size * n
        self.counters.msgs_sent += n
        self.counters.msgs_recv += n
        return out

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
