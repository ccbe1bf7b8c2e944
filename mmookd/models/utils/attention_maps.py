# Copyright (c) mmookd contributors. All rights reserved.
"""Dense attention maps from deformable attention: each query's sampling
pattern rasterised into a dense map (docs/companion_losses.md,
``AttentionCKALoss``)."""
from typing import Tuple

from torch import Tensor

__all__ = ['rasterize_deformable_attention', 'attention_cells_by_columns']


def rasterize_deformable_attention(sampling_locations: Tensor,
                                   attention_weights: Tensor,
                                   grid_size: Tuple[int, int]) -> Tensor:
    """Bilinear splat of deformable attention onto a common grid.

    Each sampling point's weight is spread over the four grid cells around
    its location, with the bilinear coefficients of ``grid_sample``
    (``align_corners=False``, the sampling of mmcv's deformable attention),
    summed over levels and points. Points outside the grid lose the part
    of their weight that falls outside. Differentiable w.r.t. the weights
    and, through the coefficients, the locations. Models with different
    numbers of levels, points or heads give maps of the same grid.

    Args:
        sampling_locations (Tensor): (B, Nq, h, L, P, 2) (x, y) in [0, 1].
        attention_weights (Tensor): (B, Nq, h, L, P).
        grid_size (tuple[int, int]): (gh, gw) of the common grid.

    Returns:
        Tensor: (B, Nq, h, gh * gw) attention mass per cell (row-major).
    """
    gh, gw = grid_size
    b, nq, h = attention_weights.shape[:3]
    loc = sampling_locations.reshape(b * nq * h, -1, 2)
    wts = attention_weights.reshape(b * nq * h, -1)
    px = loc[..., 0] * gw - 0.5
    py = loc[..., 1] * gh - 0.5
    x0, y0 = px.floor(), py.floor()
    fx, fy = px - x0, py - y0
    out = wts.new_zeros(b * nq * h, gh * gw)
    for dx, dy, coef in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                         (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = (x0 + dx).long(), (y0 + dy).long()
        inside = (xi >= 0) & (xi < gw) & (yi >= 0) & (yi < gh)
        index = (yi.clamp(0, gh - 1) * gw + xi.clamp(0, gw - 1))
        out = out.scatter_add(1, index, wts * coef * inside)
    return out.view(b, nq, h, gh * gw)


def attention_cells_by_columns(maps: Tensor) -> Tensor:
    """(B, Nq, h, G) maps -> (B, G, h * Nq): rows = grid cells, columns =
    (head, query) pairs, the layout whose linear CKA is invariant to the
    query order and allows different query / head counts."""
    b, nq, h, g = maps.shape
    return maps.permute(0, 3, 2, 1).reshape(b, g, h * nq)
