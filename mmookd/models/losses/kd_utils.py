# Copyright (c) mmookd contributors. All rights reserved.
"""Shared numerics of the companion distillation losses.

docs/companion_losses.md (shared behaviour): Gram matrices, cosine / Pearson
similarities and CKA are computed in float32 (or wider) with autocast
disabled, with an epsilon in every denominator.
"""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor


@contextmanager
def fp32_scope(tensor: Tensor) -> Iterator[None]:
    """Disable autocast on ``tensor``'s device for the enclosed code."""
    with torch.autocast(device_type=tensor.device.type, enabled=False):
        yield


def to_fp32(tensor: Tensor) -> Tensor:
    """``tensor`` as float32 or wider (float64 stays float64)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def zero_loss(*tensors: Optional[Tensor]) -> Tensor:
    """A scalar zero still connected to every given tensor's graph, so
    that DDP sees a gradient for every parameter on steps where a loss has
    nothing to compare."""
    zero = None
    for tensor in tensors:
        if tensor is None:
            continue
        term = to_fp32(tensor).sum() * 0
        zero = term if zero is None else zero + term
    assert zero is not None, 'zero_loss needs at least one tensor'
    return zero


def as_rows(x: Tensor, pool_kernel: int = 1) -> Tensor:
    """Features as row sets ``(B, N, C)``.

    * ``(B, C, H, W)`` feature maps: average-pooled with kernel = stride =
      ``pool_kernel`` (ETC pools its PPM features by 2), then one row per
      position, ``N = h * w``;
    * ``(B, N, C)``: unchanged (e.g. ``N`` matched query embeddings);
    * ``(N, C)``: one set, ``B = 1``.
    """
    if x.dim() == 4:
        if pool_kernel > 1:
            x = F.avg_pool2d(x, pool_kernel, pool_kernel, ceil_mode=True)
        return x.flatten(2).transpose(1, 2)
    if x.dim() == 3:
        return x
    if x.dim() == 2:
        return x[None]
    raise ValueError(f'expected (B, C, H, W), (B, N, C) or (N, C) '
                     f'features, got shape {tuple(x.shape)}')


def cosine_matrix(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """``A[..., i, j] = cos(a_i, b_j)`` of rows ``(..., N, C)`` and
    ``(..., M, C)``; a zero row has cosine 0."""
    a = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    b = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    return a @ b.transpose(-1, -2)


def reduce_items(loss: Tensor,
                 reduction: str,
                 weight: Optional[Tensor] = None,
                 avg_factor: Optional[float] = None) -> Tensor:
    """mmdet's weighted reduction of per-item losses (``'none'`` keeps the
    items)."""
    if weight is not None:
        weight = weight.to(loss.dtype)
    return weight_reduce_loss(
        loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


def check_reduction(reduction: str, allowed=('none', 'mean', 'sum')) -> str:
    if reduction not in allowed:
        raise ValueError(f'reduction must be one of {allowed}, got '
                         f'{reduction!r}')
    return reduction
