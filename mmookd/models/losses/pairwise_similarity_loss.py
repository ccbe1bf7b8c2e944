# Copyright (c) mmookd contributors. All rights reserved.
"""Pair-wise similarity distillation, L_pa of paper A (ETC; Structured KD,
CVPR'19; docs/companion_losses.md, ``PairwiseSimilarityDistillLoss``)."""
from typing import Optional

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

__all__ = ['PairwiseSimilarityDistillLoss']


@MODELS.register_module()
class PairwiseSimilarityDistillLoss(BaseModule):
    """``L_pa = MSE(A_S, A_T)``, ``A[i, j] = cos(x_i, x_j)`` within a frame.

    ETC's ``CriterionSDcos_self``: the self-similarity of each model's
    features over ``N`` positions, compared with a mean-squared error over
    ``(B, N, N)``. Student and teacher channel counts may differ; the rows
    must correspond.

    * **Dense** (ETC): ``(B, C, H, W)`` feature maps, average-pooled with
      kernel = stride = ``pool_kernel`` (ETC: 2 on PPM features; we
      suggest stride-16 mask features for VIS). Rows are positions, the
      same for both models: no query correspondence needed.
    * **Query** [DESIGN]: ``(B, N, C)`` or ``(N, C)`` embeddings of the
      ``N`` matched instances of a frame, row ``i`` of the student paired
      with row ``i`` of the teacher (needs ``N >= 2``).

    Permutations: the loss is unchanged when the rows of *both* models are
    permuted alike, and changes when only one model's rows are (the
    correspondence matters). It is invariant to any orthogonal transform
    and positive scaling of either model's channels.

    Args:
        pool_kernel (int): Pooling of dense inputs. Defaults to 1.
        reduction (str): ``'mean'`` over all ``B * N * N`` entries (ETC),
            ``'sum'``, or ``'none'``: ``(B,)`` per-set means.
        loss_weight (float): lambda_pa. Defaults to 1.0.
        eps (float): Norm epsilon. Defaults to 1e-8.
    """

    def __init__(self,
                 pool_kernel: int = 1,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 eps: float = 1e-8) -> None:
        super().__init__()
        self.pool_kernel = int(pool_kernel)
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight
        self.eps = eps

    def similarity(self, x: Tensor) -> Tensor:
        """(B, N, N) cosine self-similarity of features ``x``."""
        rows = as_rows(to_fp32(x), self.pool_kernel)
        return cosine_matrix(rows, rows, self.eps)

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Forward function.

        Args:
            pred (Tensor): Student features, see the class docstring.
            target (Tensor): Teacher features of the same layout (channels
                may differ).
            weight (Tensor, optional): (B,) per-set weights (ETC: 1.0 for
                the key frame, 0.4 for neighbours).
            avg_factor (float, optional): Averaging factor.

        Returns:
            Tensor: The weighted loss.
        """
        target = target.detach()
        with fp32_scope(pred):
            a_s, a_t = self.similarity(pred), self.similarity(target)
            if a_s.shape != a_t.shape:
                raise ValueError(
                    f'student {tuple(a_s.shape)} and teacher '
                    f'{tuple(a_t.shape)} similarity matrices differ: the '
                    'rows (positions or matched queries) must correspond')
            if a_s.numel() == 0:
                return self.loss_weight * zero_loss(pred)
            per_set = (a_s - a_t).pow(2).flatten(1).mean(1)
            loss = reduce_items(per_set, self.reduction, weight, avg_factor)
        return self.loss_weight * loss
