"""Scale-out with torchrun: DDP over gloo on CPU, nccl on GPU. One process is the default."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    rank = int(os.environ["RANK"])
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
        # torchrun starts every rank with all cores; split them so ranks do not fight.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank, world, device)


def wrap(model: nn.Module, ctx: Dist) -> nn.Module:
    if ctx.world == 1:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def broadcast_parameters(model: nn.Module, ctx: Dist) -> None:
    """Copy rank 0's parameters and buffers to every rank (what DDP does when it wraps a model)."""
    if ctx.world == 1:
        return
    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[nn.Parameter], ctx: Dist) -> None:
    """All-reduce the mean gradient of ``params`` in one flat buffer (manual data parallelism).

    For models whose training step calls methods other than ``forward`` (the codec's
    ``encode``/``decode``): DDP only synchronises gradients of a backward pass that went through
    its own ``forward``, and silently skips the rest.
    """
    if ctx.world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_across(value: float, ctx: Dist) -> float:
    if ctx.world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item()) / ctx.world


def shutdown(ctx: Dist) -> None:
    """Leave the process group together: a rank that tears gloo down while its peer is still
    sending can abort (SIGABRT, "terminate called without an active exception"). Called from a
    ``finally`` while an exception propagates, it skips the barrier: the peers may never reach it.
    """
    if ctx.world > 1 and dist.is_initialized():
        if sys.exc_info()[0] is None:
            dist.barrier()
        dist.destroy_process_group()
