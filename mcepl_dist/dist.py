"""Process-group setup from torchrun's environment, device/backend choice, and the few
collectives used for bookkeeping (run directory, summary); never for the algorithm."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mcepl_dist.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def env_from_torchrun() -> DistEnv:
    """Read RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE (defaults: a single process)."""
    def get(name: str, default: int) -> int:
        return int(os.environ.get(name, default))

    world = get("WORLD_SIZE", 1)
    return DistEnv(get("RANK", 0), world, get("LOCAL_RANK", 0), get("LOCAL_WORLD_SIZE", world))


def choose_device(env: DistEnv, device: str, backend: str) -> tuple[torch.device, str]:
    """Resolve `device` and `backend` (auto|...) into a compute device and a transport backend.

    nccl needs one GPU per rank; ranks that share GPUs compute on CUDA and talk over gloo.
    """
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ConfigError("comm.device: cuda requested but no CUDA device is visible")
    use_cuda = device == "cuda" or (device == "auto" and has_cuda)
    gpus = torch.cuda.device_count() if use_cuda else 0
    own_gpu = use_cuda and env.local_world_size <= gpus
    if backend == "nccl" and not own_gpu:
        raise ConfigError("comm.backend: nccl needs one GPU per rank "
                          f"({env.local_world_size} ranks, {gpus} GPUs); use gloo")
    chosen_backend = backend if backend != "auto" else ("nccl" if own_gpu else "gloo")
    if not use_cuda:
        return torch.device("cpu"), chosen_backend
    return torch.device("cuda", env.local_rank % gpus), chosen_backend


def set_cpu_threads(env: DistEnv) -> int:
    """Share the CPU cores among the ranks of this host (at least one thread each)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // max(1, env.local_world_size))
    torch.set_num_threads(threads)
    return threads


def init_process_group(env: DistEnv, backend: str, device: torch.device,
                       timeout_s: float) -> None:
    """Join the job's process group, with a timeout so a lost peer ends the run."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size,
                            timeout=datetime.timedelta(seconds=timeout_s),
                            device_id=device if backend == "nccl" else None)


def destroy_process_group() -> None:
    """Leave the process group if joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if (
        dist.get_backend() == "nccl") else torch.device("cpu")


def broadcast_int(value: int, src: int = 0) -> int:
    """Rank `src`'s integer, on every rank."""
    t = torch.tensor([value], dtype=torch.int64, device=_comm_device())
    dist.broadcast(t, src=src)
    return int(t.item())


def all_gather_floats(values: list[float]) -> list[list[float]]:
    """Every rank's fixed-length float vector, indexed by rank (no pickling)."""
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return [o.cpu().tolist() for o in out]


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks."""
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def all_reduce_min(value: int) -> int:
    """The smallest of the ranks' integers (agreeing on a checkpoint to resume from)."""
    t = torch.tensor([value], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def barrier() -> None:
    """Wait for every rank (around the run directory's creation and after checkpoints)."""
    dist.barrier()
