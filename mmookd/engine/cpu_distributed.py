# Copyright (c) mmookd contributors. All rights reserved.
"""Multi-process training and testing on machines without CUDA.

mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device`` and
wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail with a
CPU build of torch. Running ``tools/dist_train.sh CFG 2`` on a laptop or a CI
machine is still useful (it exercises the distributed code paths: sampler
sharding, result collection, gradient all-reduce), so on CPU we initialise a
``gloo`` process group ourselves (mmengine then skips its own init) and wrap
the model with a DDP subclass that leaves ``device_ids`` unset.
"""
import os
from typing import Any

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUCompatibleDDP(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that accepts CPU modules (DDP requires
    ``device_ids=None`` for them)."""

    def __init__(self, module: torch.nn.Module, **kwargs: Any) -> None:
        if next(module.parameters()).device.type == 'cpu':
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        super().__init__(module=module, **kwargs)


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare ``cfg`` for a distributed launch without CUDA.

    Returns True when the CPU (gloo) path was set up, False when nothing had
    to be done (no distributed launcher, or CUDA is available).
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['type'] = 'CPUCompatibleDDP'
    cfg.model_wrapper_cfg = wrapper
    return True


def teardown_distributed() -> None:
    """Wait for every rank, then destroy the process group.

    Left to interpreter exit, gloo's background threads can be destroyed
    while still joinable, and a rank aborts with ``terminate called without
    an active exception`` after a run that finished (seen once in CI on a
    two-process CPU run).
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
