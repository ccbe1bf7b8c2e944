# Copyright (c) mmookd contributors. All rights reserved.
"""Pair-wise-frames dependency distillation, L_PF of paper A (ETC;
docs/companion_losses.md, ``CrossFrameAffinityDistillLoss``)."""
from typing import Optional

import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from .kd_utils import (
    as_rows,
    check_reduction,
    cosine_matrix,
    fp32_scope,
    reduce_items,
    to_fp32,
    zero_loss,
)

__all__ = ['CrossFrameAffinityDistillLoss', 'legacy_cross_frame_affinity']


def legacy_cross_frame_affinity(x: Tensor,
                                x_ref: Tensor,
                                eps: float = 1e-8) -> Tensor:
    """ETC's ``Cos_Attn_no`` normaliser quirk: ``<x_t(i), x_t'(j)> /
    (|x_t'(i)| |x_t(j)|)`` (indices transposed; a true cosine only on the
    diagonal). Rows ``(B, N, C)`` of both frames, same ``N``."""
    dot = x @ x_ref.transpose(-1, -2)
    norm = x_ref.norm(dim=-1)[..., :, None] * x.norm(dim=-1)[..., None, :]
    return dot / norm.clamp_min(eps)


@MODELS.register_module()
class CrossFrameAffinityDistillLoss(BaseModule):
    """``L_PF = mean (A_S - A_T)^2`` with ``A[i, j] = cos(x_t(i),
    x_t'(j))`` across two frames.

    ETC's ``CriterionSDcos_sig``: each model's affinity between the
    positions of frame ``t`` and those of frame ``t'``, which transfers
    the teacher's temporal correspondence structure; no optical flow is
    needed (both models see the same pair).

    * **Dense** (ETC): ``(B, C, H, W)`` features of both frames (ETC uses
      class logits without pooling; stride-16 mask features are our
      suggestion for VIS), no correspondence needed.
    * **Query** (our design, recommended for online VIS): ``(B, K, C)`` /
      ``(K, C)`` embeddings of the matched instances of frame ``t`` and
      ``(B, K', C)`` of frame ``t'``, the same instance order for both
      models. This is the association structure IDOL-style trackers use.

    Permutations: unchanged when the rows of a frame are permuted alike in
    both models; changed when only one model's are.

    Args:
        pool_kernel (int): Pooling of dense inputs. Defaults to 1 (ETC).
        mode (str): ``'mse'`` (ETC) or ``'kl'``: row-wise ``KL(softmax(A_T
            / tau) || softmax(A_S / tau))`` (our design).
        tau (float): Temperature of ``'kl'``. Defaults to 0.1.
        legacy_norm (bool): Reproduce ETC's transposed normaliser (dense,
            ``N = N'``). Defaults to False (the intended cosine).
        reduction (str): ``'mean'`` (``mse``: over all entries; ``kl``:
            over rows), ``'sum'``, or ``'none'``: ``(B,)``.
        loss_weight (float): lambda_PF (unknown in the paper; 1.0).
        eps (float): Norm epsilon. Defaults to 1e-8.
    """

    def __init__(self,
                 pool_kernel: int = 1,
                 mode: str = 'mse',
                 tau: float = 0.1,
                 legacy_norm: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 eps: float = 1e-8) -> None:
        super().__init__()
        if mode not in ('mse', 'kl'):
            raise ValueError(f"mode must be 'mse' or 'kl', got {mode!r}")
        self.pool_kernel = int(pool_kernel)
        self.mode = mode
        self.tau = tau
        self.legacy_norm = legacy_norm
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight
        self.eps = eps

    def affinity(self, x: Tensor, x_ref: Tensor) -> Tensor:
        """(B, N, N') affinity of frame ``t`` rows to frame ``t'`` rows."""
        rows = as_rows(to_fp32(x), self.pool_kernel)
        rows_ref = as_rows(to_fp32(x_ref), self.pool_kernel)
        if self.legacy_norm:
            if rows.shape != rows_ref.shape:
                raise ValueError('legacy_norm needs the same positions in '
                                 'both frames')
            return legacy_cross_frame_affinity(rows, rows_ref, self.eps)
        return cosine_matrix(rows, rows_ref, self.eps)

    def forward(self,
                pred: Tensor,
                pred_ref: Tensor,
                target: Tensor,
                target_ref: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Forward function.

        Args:
            pred (Tensor): Student features of frame ``t``.
            pred_ref (Tensor): Student features of frame ``t'``.
            target (Tensor): Teacher features of frame ``t``.
            target_ref (Tensor): Teacher features of frame ``t'``.
            weight (Tensor, optional): (B,) per-pair weights.
            avg_factor (float, optional): Averaging factor.

        Returns:
            Tensor: The weighted loss.
        """
        with fp32_scope(pred):
            a_s = self.affinity(pred, pred_ref)
            a_t = self.affinity(target.detach(), target_ref.detach())
            if a_s.shape != a_t.shape:
                raise ValueError(
                    f'student {tuple(a_s.shape)} and teacher '
                    f'{tuple(a_t.shape)} affinities differ: rows must '
                    'correspond')
            if a_s.numel() == 0:
                return self.loss_weight * zero_loss(pred, pred_ref)
            if self.mode == 'mse':
                per_pair = (a_s - a_t).pow(2).flatten(1).mean(1)
            else:
                log_ps = F.log_softmax(a_s / self.tau, -1)
                log_pt = F.log_softmax(a_t / self.tau, -1)
                per_pair = (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean(-1)
            loss = reduce_items(per_pair, self.reduction, weight, avg_factor)
        return self.loss_weight * loss
