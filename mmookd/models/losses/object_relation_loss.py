# Copyright (c) mmookd contributors. All rights reserved.
"""Intra- and inter-object relation distillation of paper B (Truong et al.;
read as DIST, Huang et al. NeurIPS 2022; docs/companion_losses.md,
``InterIntraObjectDistillLoss``)."""
from typing import Optional

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from .kd_utils import fp32_scope, to_fp32, zero_loss

__all__ = [
    'InterIntraObjectDistillLoss', 'pearson', 'inter_relation_loss',
    'intra_relation_loss'
]


def pearson(a: Tensor, b: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    """Pearson correlation along ``dim``: ``cos(a - mean a, b - mean b)``.

    DIST's ``pearson_correlation`` adds eps 1e-8 to the *product* of the
    norms, which under-reports the correlation of near-constant vectors
    (e.g. pixels where all objects are about equally likely, norms ~1e-4)
    so that ``S = T`` is not a minimum there. Here each norm is clamped at
    eps instead, and two constant vectors count as perfectly correlated
    (nothing to match), so ``rho(a, a) = 1`` always.
    """
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    na, nb = a.norm(dim=dim), b.norm(dim=dim)
    rho = (a * b).sum(dim) / (na.clamp_min(eps) * nb.clamp_min(eps))
    return torch.where((na < eps) & (nb < eps), torch.ones_like(rho), rho)


def inter_relation_loss(ys: Tensor, yt: Tensor) -> Tensor:
    """``1 - mean_m rho(Y_S[m, :], Y_T[m, :])`` over (M, O) probabilities:
    per sample (pixel / query), the relation across objects / classes."""
    return 1 - pearson(ys, yt, dim=-1).mean()


def intra_relation_loss(ys: Tensor, yt: Tensor) -> Tensor:
    """``1 - mean_o rho(Y_S[:, o], Y_T[:, o])`` over (M, O) probabilities:
    per object / class, the relation across all samples."""
    return 1 - pearson(ys, yt, dim=0).mean()


@MODELS.register_module()
class InterIntraObjectDistillLoss(BaseModule):
    """``L = tau^2 (beta L_inter + gamma L_intra)`` (DIST).

    Inputs are logits ``(M, O)`` (or ``(B, M, O)``, flattened to ``B * M``
    rows as DIST pools over the batch): ``O`` objects (or classes) form a
    distribution ``Y = softmax(Z / tau)`` per row, ``M`` samples are the
    rows (pixels or queries). For a DETR-style student (our design), one
    frame's ``K`` matched queries' mask logits become ``Z = [m_1 .. m_K,
    0]`` over the ``N`` pixels (rows = pixels, ``O = K + 1`` with a
    background logit fixed at 0; with ``K = 1`` the softmax equals the
    sigmoid mask). Paper B's exact formula, tau, beta, gamma are unknown:
    this is the DIST reading inferred from summaries of the paper.

    * ``L_inter``: per row, Pearson correlation across ``O`` between S and
      T. Skipped (0) when ``O < 3``: two-way distributions always
      correlate at +-1 (a degenerate case).
    * ``L_intra``: per column, Pearson correlation across the rows.

    Both lie in [0, 2], are 0 when S = T, invariant to a positive affine
    transform of each row (inter) / column (intra) of ``Y``, and unchanged
    when rows or columns are permuted alike in S and T.

    Args:
        tau (float): Temperature. Defaults to 1.0 (DIST / MMRazor).
        inter_weight (float): beta. Defaults to 1.0.
        intra_weight (float): gamma. Defaults to 1.0.
        background_logit (float, optional): Append a constant column (the
            background object) to both inputs. Defaults to None; use 0.0
            for per-query mask logits.
        loss_weight (float): lambda_log. Defaults to 1.0.
    """

    def __init__(self,
                 tau: float = 1.0,
                 inter_weight: float = 1.0,
                 intra_weight: float = 1.0,
                 background_logit: Optional[float] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.tau = tau
        self.inter_weight = inter_weight
        self.intra_weight = intra_weight
        self.background_logit = background_logit
        self.loss_weight = loss_weight

    def probabilities(self, logits: Tensor) -> Tensor:
        """(M, O [+ 1]) ``softmax(Z / tau)`` rows, float32."""
        z = to_fp32(logits).reshape(-1, logits.size(-1))
        if self.background_logit is not None:
            z = torch.cat(
                [z, z.new_full((z.size(0), 1), self.background_logit)], 1)
        return (z / self.tau).softmax(-1)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Forward function.

        Args:
            pred (Tensor): (M, O) or (B, M, O) student logits.
            target (Tensor): Teacher logits of the same shape.

        Returns:
            Tensor: The weighted scalar loss.
        """
        if pred.shape != target.shape:
            raise ValueError(f'pred {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} must have one shape')
        if pred.numel() == 0:
            return self.loss_weight * zero_loss(pred)
        with fp32_scope(pred):
            ys = self.probabilities(pred)
            yt = self.probabilities(target.detach())
            loss = zero_loss(pred)
            if ys.size(1) >= 3:
                loss = loss + self.inter_weight * inter_relation_loss(ys, yt)
            if ys.size(0) >= 2:
                loss = loss + self.intra_weight * intra_relation_loss(ys, yt)
            loss = self.tau**2 * loss
        return self.loss_weight * loss
