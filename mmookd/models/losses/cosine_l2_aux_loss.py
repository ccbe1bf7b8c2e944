# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's auxiliary cosine-L2 embedding loss (docs/hyperparameters.md §9)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class CosineL2AuxLoss(BaseModule):
    """Squared error of the cosine similarity to a 1/0 target (§9).

    Per contrastive item with anchor ``k``: ``c = cos(v, k)`` for all its
    positives ``v`` and for a uniformly random subset of its negatives of
    size ``min(neg_pos_ratio * |P|, |N|)`` (``neg_pos_ratio`` negatives
    when ``|P| = 0``); the item loss is ``mean((c - target)^2)`` over
    those, target 1 for positives and 0 for negatives. Items are then
    reduced (``'mean'``: IDOL averages over items; an item with nothing to
    compare counts as 0). IDOL adds it to the multi-positive loss to keep
    the cosine, which its tracker does not use, from drifting (weight 3 in
    IDOL's config, set there, not here).

    Unlike mmdet's ``L2Loss`` (used by QDTrack and mmtracking's IDOL port)
    there is no clamp of the prediction to [0, 1], no positive / negative
    margin and no hard mining: this is the official IDOL formula.

    The similarity is computed in fp32 or wider (``F.normalize`` with eps
    1e-12, as IDOL). Sampling draws from torch's global RNG on the input's
    device, so it is reproducible under mmengine's ``randomness.seed``; it
    is deterministic when every negative is kept (``|N| <= ratio * |P|``).

    Args:
        neg_pos_ratio (int): Negatives kept per positive. Defaults to 10.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over items.
            Defaults to ``'mean'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 neg_pos_ratio: int = 10,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        assert reduction in ('none', 'mean', 'sum')
        self.neg_pos_ratio = neg_pos_ratio
        self.reduction = reduction
        self.loss_weight = loss_weight

    def sample(self, labels: Tensor) -> Tensor:
        """Mask (n, m) of the entries used: positives + sampled negatives.

        Args:
            labels (Tensor): (n, m), 1 positive, 0 negative, -1 ignored.

        Returns:
            Tensor: (n, m) bool, every positive and, per row, a uniformly
            random ``min(ratio * max(|P|, 1), |N|)`` of the negatives.
        """
        pos, neg = labels == 1, labels == 0
        quota = torch.minimum(self.neg_pos_ratio * pos.sum(1).clamp(min=1),
                              neg.sum(1))
        # Uniform random ranks among the negatives (non-negatives last).
        rand = torch.rand(labels.shape, device=labels.device)
        rank = rand.masked_fill(~neg, 2.0).argsort(1).argsort(1)
        return pos | (neg & (rank < quota[:, None]))

    def forward(self,
                anchor_embeds: Tensor,
                ref_embeds: Tensor,
                labels: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Forward function.

        Args:
            anchor_embeds (Tensor): (n, C) anchor (key) embeddings.
            ref_embeds (Tensor): (n, m, C) candidate embeddings of each item
                or (m, C) shared by all items.
            labels (Tensor): (n, m) 1 positive, 0 negative, -1 ignored (or
                padding).
            weight (Tensor, optional): (n,) per-item weights.
            avg_factor (float, optional): Averaging factor over items.
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The loss (per item for ``'none'``).
        """
        assert reduction_override in (None, 'none', 'mean', 'sum')
        reduction = reduction_override or self.reduction
        if ref_embeds.dim() == 2:
            ref_embeds = ref_embeds[None].expand(len(anchor_embeds), -1, -1)
        assert labels.shape == ref_embeds.shape[:2]
        assert len(anchor_embeds) == len(labels)
        if len(labels) == 0:
            zero = (anchor_embeds.sum() + ref_embeds.sum()).float() * 0
            return zero.reshape(0) if reduction == 'none' else zero
        dtype = torch.promote_types(anchor_embeds.dtype, torch.float32)
        anchor = F.normalize(anchor_embeds.to(dtype), dim=-1)
        ref = F.normalize(ref_embeds.to(dtype), dim=-1)
        cosine = torch.einsum('nc,nmc->nm', anchor, ref)
        used = self.sample(labels).to(dtype)
        target = (labels == 1).to(dtype)
        sq_err = (cosine - target).pow(2) * used
        loss = sq_err.sum(1) / used.sum(1).clamp(min=1)
        if weight is not None:
            weight = weight.to(dtype)
        loss = weight_reduce_loss(
            loss, weight=weight, reduction=reduction, avg_factor=avg_factor)
        return self.loss_weight * loss
