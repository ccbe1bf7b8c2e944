# Copyright (c) mmookd contributors. All rights reserved.
"""Pixel-wise KL distillation, L_pi of paper A (ETC;
docs/companion_losses.md, ``PixelKLDistillLoss``)."""
from typing import Optional

import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from .kd_utils import check_reduction, fp32_scope, to_fp32, zero_loss

__all__ = ['PixelKLDistillLoss']


@MODELS.register_module()
class PixelKLDistillLoss(BaseModule):
    """``KL(p_T || p_S)`` of tempered teacher and student probabilities.

    Paper A's pixel-wise distillation ``L_pi = KL(softmax(Z_T / tau) ||
    softmax(Z_S / tau))`` (ETC ``util/crit.py::CriterionKD``, tau = 1),
    applied per element of ``(M, ...)`` logits whose row ``m`` of the
    student is paired with row ``m`` of the teacher (per matched query for
    a DETR-style student, our design):

    * ``mode='softmax'``: categorical KL over the last dim (ETC's classes;
      C + 1 classes of a softmax classifier);
    * ``mode='sigmoid'``: Bernoulli KL of every element, ``p log(p / q) +
      (1 - p) log((1 - p) / (1 - q))`` (IDOL's sigmoid class logits, and
      per-pixel mask logits ``(M, h, w)``).

    Reduction of the elementwise terms ``E`` (same shape as the inputs):

    * ``'mean'`` (ETC, ``nn.KLDivLoss()`` default): ``sum(E) / numel``,
      the divisor includes the class (or pixel) dims, no tau^2;
    * ``'batchmean'``: ``sum(E) / M`` (a per-row KL; rescale
      ``loss_weight`` by ``numel / M`` to compare with ETC's weights);
    * ``'sum'``; ``'none'``: ``(M,)`` per-row sums.

    Teacher logits carry no gradient; internals are float32 with autocast
    disabled.

    Args:
        mode (str): ``'softmax'`` or ``'sigmoid'``. Defaults to
            ``'softmax'``.
        tau (float): Temperature. Defaults to 1.0 (ETC).
        tau_squared (bool): Multiply by tau^2 (Hinton's gradient scale;
            ETC does not). Defaults to False.
        reduction (str): See above. Defaults to ``'mean'``.
        loss_weight (float): lambda_pi. Defaults to 1.0.
    """

    def __init__(self,
                 mode: str = 'softmax',
                 tau: float = 1.0,
                 tau_squared: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if mode not in ('softmax', 'sigmoid'):
            raise ValueError(f"mode must be 'softmax' or 'sigmoid', got "
                             f'{mode!r}')
        self.mode = mode
        self.tau = tau
        self.tau_squared = tau_squared
        self.reduction = check_reduction(reduction,
                                         ('none', 'mean', 'batchmean', 'sum'))
        self.loss_weight = loss_weight

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """Elementwise KL terms ``E`` (float32), same shape as ``pred``."""
        zs, zt = to_fp32(pred) / self.tau, to_fp32(target) / self.tau
        if self.mode == 'softmax':
            log_ps, log_pt = F.log_softmax(zs, -1), F.log_softmax(zt, -1)
            return log_pt.exp() * (log_pt - log_ps)
        pt = zt.sigmoid()
        return pt * (F.logsigmoid(zt) - F.logsigmoid(zs)) + (1 - pt) * (
            F.logsigmoid(-zt) - F.logsigmoid(-zs))

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Forward function.

        Args:
            pred (Tensor): (M, ...) student logits.
            target (Tensor): (M, ...) teacher logits, paired row by row.
            weight (Tensor, optional): (M,) per-row weights (e.g. ETC's 1.0
                for the key frame and 0.4 for neighbours).
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The weighted loss (``(M,)`` for ``'none'``).
        """
        reduction = check_reduction(reduction_override or self.reduction,
                                    ('none', 'mean', 'batchmean', 'sum'))
        if pred.shape != target.shape:
            raise ValueError(f'pred {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} must have one shape')
        target = target.detach()
        with fp32_scope(pred):
            if pred.numel() == 0:
                zero = zero_loss(pred)
                return zero.expand(pred.size(0)) if reduction == 'none' \
                    else zero
            elem = self.elementwise(pred, target)
            if weight is not None:
                shape = (-1, ) + (1, ) * (elem.dim() - 1)
                elem = elem * to_fp32(weight).view(shape)
            if reduction == 'none':
                loss = elem.flatten(1).sum(1)
            elif reduction == 'mean':
                loss = elem.mean()
            elif reduction == 'batchmean':
                loss = elem.sum() / max(pred.size(0), 1)
            else:
                loss = elem.sum()
            if self.tau_squared:
                loss = loss * self.tau**2
        return self.loss_weight * loss
