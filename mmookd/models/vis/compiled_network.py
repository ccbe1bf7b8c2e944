# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's network as one compiled graph per input size (issue 15).

At 360x640 a Deformable-DETR frame on an H100 is a few milliseconds of
kernels behind tens of milliseconds of Python and launch overhead. The fast
path's network (:meth:`IDOLFastPath.network`) reads nothing back from the
device and passes the level shapes as Python ints, so ``torch.compile``
can capture backbone, neck, encoder, decoder and heads whole; the
deformable attention is the registered op ``mmookd::ms_deform_attn``
(mmcv's CUDA kernel on GPU, its PyTorch formulation on CPU) with a fake
implementation for tracing. On CUDA ``mode='reduce-overhead'`` replays
the graph with CUDA graphs: one launch per frame instead of thousands.

The frame metadata (input, image and original sizes) is fixed per compiled
graph; a new size compiles a new graph (videos have one size).
"""
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from torch import Tensor

__all__ = ['compile_network']


def _meta_key(imgs: Tensor, samples: Sequence[Any]) -> tuple:
    metas = tuple(
        (tuple(s.batch_input_shape), tuple(s.img_shape[:2])) for s in samples)
    return (tuple(imgs.shape), str(imgs.device), imgs.dtype, metas)


def compile_network(network: Callable,
                    mode: Optional[str] = None,
                    **compile_kwargs) -> Callable:
    """A compiled drop-in for the fast path's network.

    Args:
        network (callable): ``(imgs, data_samples) -> outputs``, e.g.
            ``model.fast_path().network`` (``test_cfg.compile=True`` does
            this for the fast path).
        mode (str, optional): ``torch.compile`` mode; defaults to
            ``'reduce-overhead'`` (CUDA graphs) on CUDA and the default
            mode elsewhere.
        **compile_kwargs: More ``torch.compile`` arguments.

    Returns:
        callable: ``(imgs, data_samples) -> outputs`` like
        :meth:`IDOLFastPath.network`.
    """
    graphs: Dict[tuple, Callable] = {}

    def compiled(imgs: Tensor, samples: Sequence[Any]) -> Dict[str, Any]:
        key = _meta_key(imgs, samples)
        if key not in graphs:
            fixed = list(samples)
            chosen = mode
            if chosen is None and imgs.is_cuda:
                chosen = 'reduce-overhead'

            def frame_network(x: Tensor) -> Dict[str, Any]:
                return network(x, fixed)

            # one eager call first fills the per-size constant caches the
            # network reads, so the graph's guards hold from then on (else
            # the second frame recompiles)
            network(imgs, fixed)

            graphs[key] = torch.compile(
                frame_network, mode=chosen, dynamic=False, **compile_kwargs)
        if imgs.is_cuda:
            # a new frame: the previous frame's graph outputs may be
            # overwritten (its post-processing holds host copies only)
            torch.compiler.cudagraph_mark_step_begin()
        return graphs[key](imgs)

    return compiled
