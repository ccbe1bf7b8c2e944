# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's offline-to-online distillation loss L_KD (paper eq. 4)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

__all__ = ['CosineKDLoss']


@MODELS.register_module()
class CosineKDLoss(BaseModule):
    """Cosine distance between matched student and teacher features (eq. 4).

    ``L_KD = (1/M) sum_m (1 - cos(f_off_m, f_m))`` over the M pairs that QFA
    (eqs. 2-3, :class:`mmookd.models.task_modules.QFAAssigner`) matched
    through the same GT; ``loss_weight`` is ``lambda_4`` of eq. 5 (1 in the
    paper). The per-pair loss lies in [0, 2]: 0 for parallel, 1 for
    orthogonal and 2 for opposite features.

    The teacher (offline) feature is the target and, with ``detach_target``,
    carries no gradient: only the online student is trained. The cosine is
    computed in float32 or wider (``F.cosine_similarity``, eps 1e-8, so a
    zero vector has cosine 0). With no pairs (M = 0) the loss is a zero
    still connected to ``pred`` so every DDP parameter gets a gradient.

    Args:
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over pairs.
            Defaults to ``'mean'`` (the 1/M of eq. 4).
        loss_weight (float): ``lambda_4``. Defaults to 1.0.
        detach_target (bool): Stop the gradient into the target (teacher)
            features. Defaults to True.
    """

    def __init__(self,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 detach_target: bool = True) -> None:
        super().__init__()
        assert reduction in ('none', 'mean', 'sum')
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.detach_target = detach_target

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Forward function.

        Args:
            pred (Tensor): (M, C) student (online) features ``f_sigma_m``.
            target (Tensor): (M, C) teacher (offline) features
                ``f_off_sigma_off_m``, row m paired with ``pred[m]``.
            weight (Tensor, optional): (M,) per-pair weights.
            avg_factor (float, optional): Averaging factor for ``'mean'``
                (replaces M).
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: Scalar loss, or (M,) per-pair losses for ``'none'``.
        """
        assert reduction_override in (None, 'none', 'mean', 'sum')
        reduction = reduction_override if reduction_override else \
            self.reduction
        assert pred.dim() == 2 and pred.shape == target.shape, \
            f'pred and target must both be (M, C), got {tuple(pred.shape)} ' \
            f'and {tuple(target.shape)}'
        if self.detach_target:
            target = target.detach()
        dtype = torch.promote_types(pred.dtype, torch.float32)
        if pred.size(0) == 0:
            zero = pred.to(dtype).sum(-1) * 0
            if not self.detach_target:
                zero = zero + target.to(dtype).sum(-1) * 0
            return zero if reduction == 'none' else zero.sum()
        cosine = F.cosine_similarity(
            pred.to(dtype), target.to(dtype), dim=-1, eps=1e-8)
        loss = 1 - cosine
        if weight is not None:
            weight = weight.to(dtype)
        loss = weight_reduce_loss(
            loss, weight=weight, reduction=reduction, avg_factor=avg_factor)
        return self.loss_weight * loss
