# Copyright (c) mmookd contributors. All rights reserved.
"""Backward warping with optical flow and the helpers around it.

Convention (ETC's released ``model/flow_model.py``): a flow
``F`` of shape ``(N, 2, H, W)`` holds, at pixel ``p = (x, y)`` of frame
``t``, the displacement ``(dx, dy)`` in pixels to its position in frame
``t'`` (``F = flow(I_t, I_t')``, channel 0 = x). Backward warping then
brings frame ``t'`` into frame ``t``: ``W_F(X)(p) = X(p + F(p))``.
Pixel ``i`` sits at coordinate ``i`` (pixel centres, ``align_corners``
style), so integer flows move content by whole pixels exactly.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'warp', 'resize_flow', 'photometric_occlusion', 'fb_consistency_mask'
]


def _sample_grid(flow: Tensor) -> Tuple[Tensor, Tensor]:
    """Absolute sampling positions ``p + F(p)`` (N, H, W, 2) in pixels and
    the in-bounds mask (N, 1, H, W)."""
    n, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flow.device, dtype=flow.dtype),
        torch.arange(w, device=flow.device, dtype=flow.dtype),
        indexing='ij')
    pos_x = xs[None] + flow[:, 0]
    pos_y = ys[None] + flow[:, 1]
    valid = (pos_x >= 0) & (pos_x <= w - 1) & (pos_y >= 0) & (pos_y <= h - 1)
    return torch.stack([pos_x, pos_y], -1), valid[:, None]


def warp(x: Tensor,
         flow: Tensor,
         mode: str = 'bilinear',
         padding_mode: str = 'zeros',
         return_valid: bool = False):
    """``W_F(x)(p) = x(p + F(p))`` (ETC's ``Resample2d``).

    Args:
        x (Tensor): (N, C, H, W) frame ``t'`` (predictions or images).
        flow (Tensor): (N, 2, H, W) flow ``t -> t'`` in pixels; ``N`` may be
            1 to share it over a batch of ``x``.
        mode (str): ``'bilinear'`` (ETC) or ``'nearest'`` (label maps,
            the TC metric).
        padding_mode (str): ``grid_sample`` padding outside the image.
        return_valid (bool): Also return the (N, 1, H, W) bool mask of
            pixels whose source ``p + F(p)`` lies inside frame ``t'``.

    Returns:
        Tensor | tuple[Tensor, Tensor]: ``x`` warped into frame ``t`` (and
        the in-bounds mask).
    """
    if x.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f'x {tuple(x.shape)} and flow {tuple(flow.shape)} '
                         'must have the same spatial size')
    if flow.size(0) == 1 and x.size(0) > 1:
        flow = flow.expand(x.size(0), -1, -1, -1)
    h, w = x.shape[-2:]
    pos, valid = _sample_grid(
        flow.to(torch.promote_types(flow.dtype, torch.float32)))
    scale = pos.new_tensor([max(w - 1, 1), max(h - 1, 1)])
    grid = pos / scale * 2 - 1
    x = x if x.is_floating_point() else x.float()
    out = F.grid_sample(
        x,
        grid.to(x.dtype),
        mode=mode,
        padding_mode=padding_mode,
        align_corners=True)
    return (out, valid) if return_valid else out


def resize_flow(flow: Tensor, size: Tuple[int, int]) -> Tensor:
    """Resize a flow field to ``size`` (h, w) and rescale its vectors to the
    new pixel units (ETC: "downsample it to H/4 and divide the vectors by
    4"). Grids are strided (``align_corners=False``): pixel ``i`` of a
    stride-``s`` grid covers ``[i s, (i + 1) s)``, as the stride-4 masks
    of a DETR-style model."""
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    out = F.interpolate(
        flow, size=tuple(size), mode='bilinear', align_corners=False)
    scale = out.new_tensor([size[1] / w, size[0] / h])
    return out * scale.view(1, 2, 1, 1)


def photometric_occlusion(img: Tensor,
                          img_warped: Tensor,
                          mode: str = 'l1',
                          alpha: float = 1.0) -> Tensor:
    """ETC's occlusion weight ``O = exp(-alpha * d)`` (N, 1, H, W).

    ``mode='signed_sum'`` is the released code (``d = |sum_c (I_t -
    I_hat)_c|``, opposite-sign errors cancel); ``'l1'`` is ``d = sum_c
    |I_t - I_hat|_c``; ``'none'`` gives ones.
    """
    if mode == 'none':
        return img.new_ones(img.shape[:1] + (1, ) + img.shape[2:])
    diff = img - img_warped
    if mode == 'signed_sum':
        d = diff.sum(1, keepdim=True).abs()
    elif mode == 'l1':
        d = diff.abs().sum(1, keepdim=True)
    else:
        raise ValueError(f"occlusion mode must be 'signed_sum', 'l1' or "
                         f"'none', got {mode!r}")
    return torch.exp(-alpha * d)


def fb_consistency_mask(flow_fw: Tensor,
                        flow_bw: Tensor,
                        alpha1: float = 0.01,
                        alpha2: float = 0.5) -> Tensor:
    """Non-occluded pixels of frame ``t`` by forward-backward consistency.

    ``|F_fw + W_Ffw(F_bw)|^2 < alpha1 (|F_fw|^2 + |W_Ffw(F_bw)|^2) +
    alpha2`` (Sundaram et al. 2010, as used by Lai et al. ECCV'18, whose TC
    protocol ETC follows), and the source inside frame ``t'``.

    Args:
        flow_fw (Tensor): (N, 2, H, W) flow ``t -> t'``.
        flow_bw (Tensor): (N, 2, H, W) flow ``t' -> t``.

    Returns:
        Tensor: (N, 1, H, W) bool, True where the flow is reliable.
    """
    bw_warped, valid = warp(flow_bw, flow_fw, return_valid=True)
    lhs = (flow_fw + bw_warped).pow(2).sum(1, keepdim=True)
    rhs = alpha1 * (flow_fw.pow(2).sum(1, keepdim=True) +
                    bw_warped.pow(2).sum(1, keepdim=True)) + alpha2
    return (lhs < rhs) & valid
