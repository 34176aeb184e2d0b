"""``torchrun`` for ``capsight train``: the process group, each rank's device, and decisions
rank 0 makes for every rank. Outside ``torchrun`` each is a no-op for one process on the CPU
or the one GPU.

    $ torchrun --nproc_per_node 4 -m capsight.training.train DATA --out runs/sat-ddp

    >>> rank, world = join_process_group()  # (0, 1) outside torchrun
    >>> device = rank_device(rank)
"""

from __future__ import annotations

import datetime
import os

import torch

# Ranks wait for rank 0 while it extracts features, which takes ~20 min for Flickr8k on a CPU.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


def launch_rank() -> int:
    """This process's rank as ``torchrun`` set it (0 outside torchrun), known before the
    process group starts."""
    return int(os.environ.get("RANK", "0"))


def join_process_group() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def leave_process_group(wait_for_the_others: bool) -> None:
    """Under torchrun: wait for every rank (after a run that finished; a failed rank does not
    wait for ranks that may never come), then close the group. Left to the interpreter's
    teardown, gloo's worker threads can still hold work whose tensors are freed while Python
    is being torn down, and the rank aborts (SIGABRT) after a successful run (seen once in CI
    on the two-process test; pytorch/pytorch#179291 describes the mechanism)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if wait_for_the_others:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def rank_device(rank: int) -> torch.device:
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def agree_with_rank0(flag: bool, world: int, device: torch.device) -> bool:
    """Rank 0's decision, broadcast to every rank (a no-op in a single process)."""
    if world == 1:
        return flag
    value = torch.tensor([int(flag)], device=device)
    torch.distributed.broadcast(value, src=0)
    return bool(value.item())
