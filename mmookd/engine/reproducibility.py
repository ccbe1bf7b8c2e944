# Copyright (c) mmookd contributors. All rights reserved.
"""Same seed, same machine, same numbers: a fixed CPU thread count and
deterministic algorithms for a run.

mmengine's ``randomness=dict(seed=..., deterministic=True)`` seeds Python,
NumPy and torch (and the data workers, through its ``worker_init_fn``) and
asks torch for deterministic algorithms, but torch's CPU kernels reduce in
per-thread chunks: the same run with 1 or 2 threads (``OMP_NUM_THREADS``,
another job on the cores) sums in another order and drifts apart within
a few iterations. :class:`ReproducibilityHook` fixes the thread count for
the run (``torch.set_num_threads``) and switches deterministic algorithms
on, so a config that names both gives the same numbers on the same
machine whatever the environment.
"""
import os
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

__all__ = ['ReproducibilityHook', 'make_reproducible']


def make_reproducible(num_threads: Optional[int] = None,
                      deterministic: bool = True) -> None:
    """Fix torch's CPU thread count and ask for deterministic algorithms.

    Args:
        num_threads (int, optional): Intra-op threads; None leaves them.
        deterministic (bool): ``torch.use_deterministic_algorithms(True)``
            (errors on ops without a deterministic implementation) and
            cuDNN's deterministic mode. Defaults to True.
    """
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f'num_threads must be >= 1, got {num_threads}')
        torch.set_num_threads(int(num_threads))
    if deterministic:
        # cuBLAS needs a fixed workspace for deterministic GEMMs on CUDA
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@HOOKS.register_module()
class ReproducibilityHook(Hook):
    """Fix the thread count and deterministic algorithms before a run.

    Use with ``randomness=dict(seed=..., deterministic=True)``.

    Args:
        num_threads (int, optional): Intra-op CPU threads of the run; None
            keeps the environment's (``OMP_NUM_THREADS`` or all cores).
        deterministic (bool): Deterministic algorithms. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 num_threads: Optional[int] = None,
                 deterministic: bool = True) -> None:
        if num_threads is not None and num_threads < 1:
            raise ValueError(f'num_threads must be >= 1, got {num_threads}')
        self.num_threads = num_threads
        self.deterministic = deterministic

    def before_run(self, runner) -> None:
        make_reproducible(self.num_threads, self.deterministic)
