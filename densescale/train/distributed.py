"""Data-parallel plumbing (torchrun / DDP): set-up, all-gather with gradient, sharding.

One process per device; ``WORLD_SIZE`` <= 1 means a single process and no process group.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from densescale.errors import ConfigError
from densescale.train.config import TrainConfig


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank, world size and device."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def reduce_max(self, value: int) -> int:
        """The largest ``value`` over all ranks (every rank must call it)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.long, device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return int(t.item())

    def local(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size`` rows."""
        b = batch_size // self.world
        return slice(self.rank * b, (self.rank + 1) * b)


def setup(cfg: TrainConfig) -> Dist:
    """Join the process group (torchrun sets WORLD_SIZE, LOCAL_RANK) and pick the device.

    Raises:
        ConfigError: batch size (or gathered negatives) not divisible by the world size.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        from densescale.utils import device

        return Dist(0, 1, device(cfg.device))
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (cfg.device is None or cfg.device.startswith("cuda"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size {cfg.batch_size} not divisible by WORLD_SIZE {world}")
    if cfg.gather_negatives and cfg.negatives % world:
        raise ConfigError(f"gather_negatives: negatives {cfg.negatives} not divisible by "
                          f"WORLD_SIZE {world}")
    return Dist(dist.get_rank(), world, dev)


def gather(x: torch.Tensor) -> torch.Tensor:
    """All-gather with gradient (each rank's shard, concatenated in rank order)."""
    import torch.distributed.nn.functional as dnn

    return torch.cat(dnn.all_gather(x.contiguous()), dim=0)


def shard(m: int, rank: int, world: int) -> slice:
    """Rank's contiguous share of ``m`` items (the last share may be shorter)."""
    per = math.ceil(m / world)
    return slice(rank * per, min(m, (rank + 1) * per))
