"""One run on many processes: ``torchrun --nproc_per_node N -m ganscape train ...``.

Under torchrun (``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set) each process trains the same
networks on its part of every batch, data-parallel: gradients are summed across processes before each
optimizer step (NCCL on GPUs, gloo on CPUs), so every process holds the same weights, the same
spectral-norm vectors and the same EMA. The sum is written out in the step (``all_reduce_grads``)
instead of hiding in a DistributedDataParallel wrapper, because D is called several times per
backward (real, fake, gradient penalties with their double backward, accumulated micro-batches),
which is what DDP's hooks handle worst; stylegan2-ada-pytorch syncs its gradients the same way.

Randomness does not depend on the number of processes: each global batch is cut into
``train.shards`` equal parts, each drawn from its own data, latent and noise streams derived from the
run's seed and the shard's index, and a process trains the shards ``rank, rank + N, ...``. So one
process with ``train.shards=2`` computes what two processes compute, a run resumes exactly on
another number of processes, and a checkpoint holds every shard's streams. Process 0 alone writes
the run directory (config, log, pictures, evaluations, checkpoints); every process resumes from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ganscape.errors import ConfigError


@dataclass(frozen=True)
class Processes:
    """This process's place among the run's processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run directory."""
        return self.rank == 0

    @property
    def many(self) -> bool:
        return self.world > 1


SINGLE = Processes()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def start(device_name: str) -> tuple[Processes, str]:
    """Join torchrun's process group when launched by it; returns the processes and the device to train on
    (``cuda:LOCAL_RANK`` on GPUs, else ``device_name``)."""
    if not launched_by_torchrun():
        return SINGLE, device_name
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Processes(rank, world), f"cuda:{local}" if use_cuda else device_name


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shards_of(processes: Processes, shards: int) -> list[int]:
    """The shards a process trains: ``rank, rank + world, ...`` of ``shards``."""
    if shards % processes.world:
        raise ConfigError(f"train.shards={shards} cannot be shared by {processes.world} processes; use a multiple "
                          f"of {processes.world} (0: one shard per process).")
    return list(range(processes.rank, shards, processes.world))


def all_reduce_grads(module: nn.Module, processes: Processes) -> None:
    """Sum every gradient of ``module`` across processes, in one flat buffer (one collective per update)."""
    if not processes.many:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def barrier(processes: Processes) -> None:
    """Wait until every process gets here."""
    if processes.many:
        dist.barrier()


def broadcast(value, processes: Processes):
    """Process 0's ``value`` (any picklable object), in every process."""
    if not processes.many:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value, processes: Processes) -> list:
    """Every process's ``value``, in rank order (in every process)."""
    if not processes.many:
        return [value]
    values = [None] * processes.world
    dist.all_gather_object(values, value)
    return values


def any_process(flag: bool, processes: Processes) -> bool:
    """Whether ``flag`` is true in any process (so that all stop together)."""
    if not processes.many:
        return flag
    return any(gather(bool(flag), processes))
