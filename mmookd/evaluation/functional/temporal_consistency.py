# Copyright (c) mmookd contributors. All rights reserved.
"""Temporal consistency (TC) of video instance masks, paper A's metric
adapted to VIS (docs/companion_losses.md, "Temporal consistency metric").

ETC (``tool/eval_tc.py``) warps the label map predicted at ``t + 1`` back
to ``t`` with FlowNet2 flow and takes the mIoU against the prediction at
``t`` (no occlusion masking; bilinear warping of label ids). For instance
masks we use our design: nearest-neighbour warping of every
track's binary mask and, optionally, an occlusion mask (forward-backward
flow consistency, the protocol of Lai et al. ECCV'18 that ETC cites), so
only pixels whose correspondence is reliable are compared.

``TC = mean over videos of mean over (t, track) IoU(M_t^k, W(M_{t+1}^k))``
(in %), where a track counts in a pair if it has a mask in ``t`` or ``t +
1`` inside the compared region; pairs where a track exists in only one
frame score 0 for it (a flicker).
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor

from mmookd.models.flow.warp import fb_consistency_mask, warp

__all__ = ['pair_track_ious', 'warp_masks_nearest']


def warp_masks_nearest(masks: Tensor, flow: Tensor) -> Tensor:
    """Warp (K, H, W) binary masks of frame ``t + 1`` into frame ``t`` with
    the flow ``t -> t + 1`` (2, H, W), nearest neighbour; outside -> 0."""
    if masks.numel() == 0:
        return masks.bool()
    out = warp(masks[:, None].float(), flow[None], mode='nearest')
    return out[:, 0] > 0.5


def pair_track_ious(masks: Dict[int, Tensor],
                    masks_next: Dict[int, Tensor],
                    flow: Tensor,
                    flow_back: Optional[Tensor] = None) -> List[float]:
    """IoU per track between frame ``t`` and frame ``t + 1`` warped to ``t``.

    Args:
        masks (dict[int, Tensor]): Track id -> (H, W) bool mask at ``t``.
        masks_next (dict[int, Tensor]): The same at ``t + 1``.
        flow (Tensor): (2, H, W) flow ``t -> t + 1`` in pixels.
        flow_back (Tensor, optional): (2, H, W) flow ``t + 1 -> t``: if
            given, occluded / unreliable pixels (forward-backward check) are
            left out of both masks. Pixels whose source leaves the frame are
            always left out.

    Returns:
        list[float]: One IoU in [0, 1] per track present in either frame
        within the compared region.
    """
    ids = sorted(set(masks) | set(masks_next))
    if not ids:
        return []
    h, w = flow.shape[-2:]
    device = flow.device
    empty = torch.zeros(h, w, dtype=torch.bool, device=device)
    cur = torch.stack([masks.get(i, empty).to(device).bool() for i in ids])
    nxt = torch.stack(
        [masks_next.get(i, empty).to(device).bool() for i in ids])
    warped, valid = warp(
        nxt[:, None].float(), flow[None], mode='nearest', return_valid=True)
    warped = warped[:, 0] > 0.5
    region = valid[0, 0]
    if flow_back is not None:
        region = region & fb_consistency_mask(flow[None], flow_back[None])[0,
                                                                           0]
    cur, warped = cur & region, warped & region
    inter = (cur & warped).flatten(1).sum(1).float()
    union = (cur | warped).flatten(1).sum(1).float()
    keep = union > 0
    return (inter[keep] / union[keep]).tolist()
