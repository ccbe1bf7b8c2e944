# Copyright (c) mmookd contributors. All rights reserved.
"""Query Filtering and Association (QFA), OOKD paper Sec. 3.3, eqs. 2-3.

For the M ground truths (GTs) of one frame and N predicted queries, QFA
builds the cost ``S[n, m] = L_c(C_hat_n, C_m) + lambda_b * L_b(B_hat_n,
B_m)`` (eq. 2) and keeps, per GT, only its lowest-cost query ``sigma_m =
argmin_n S[n, m]`` (eq. 3); every other query is filtered out. Run once on
the student's and once on the teacher's predictions, the GT index ``m``
links student query ``sigma_m`` to teacher query ``sigma_off_m`` for the KD
loss (eq. 4, :class:`mmookd.models.losses.CosineKDLoss`).
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData
from torch import Tensor

__all__ = ['QFAAssigner', 'QFAResult']


@dataclass
class QFAResult:
    """Output of :meth:`QFAAssigner.assign` (all tensors on the predictions'
    device).

    Attributes:
        matched_pred_inds (Tensor): (M,) long, the query ``sigma_m`` kept for
            each GT, or -1 when the GT is unmatched (``max_cost`` exceeded,
            or no predictions at all).
        costs (Tensor): (M,) the minimum cost ``S[sigma_m, m]`` of each GT
            (also for GTs left unmatched by ``max_cost``; ``inf`` when
            N = 0).
        filtered_pred_mask (Tensor): (N,) bool, True for the queries that
            no GT kept ("filtered out" in the paper).
        cost_matrix (Tensor): (N, M) the full cost matrix S of eq. 2.
    """
    matched_pred_inds: Tensor
    costs: Tensor
    filtered_pred_mask: Tensor
    cost_matrix: Tensor

    @property
    def num_gts(self) -> int:
        """Number of GTs M."""
        return self.matched_pred_inds.numel()

    @property
    def num_preds(self) -> int:
        """Number of queries N."""
        return self.filtered_pred_mask.numel()

    @property
    def matched_gt_mask(self) -> Tensor:
        """(M,) bool, True for GTs that kept a query."""
        return self.matched_pred_inds >= 0


@TASK_UTILS.register_module()
class QFAAssigner:
    """Per-GT lowest-cost query selection of OOKD's QFA (paper eqs. 2-3).

    ``S[n, m] = CE(scores_n, label_m) + lambda_b * (1 - GIoU(box_n, box_m))``
    and ``sigma_m = argmin_n S[n, m]``. The class term follows the
    classifier of the model that produced the logits:

    - ``cls_mode='sigmoid'`` (default; IDOL's sigmoid focal classifier): the
      binary cross entropy of the GT class, ``-log(sigmoid(logit_c) + eps)``.
    - ``cls_mode='softmax'``: ``-log_softmax(logits)_c``.

    Semantics worth knowing:

    - The argmin is taken per GT, so it is *not* one-to-one: several GTs may
      keep the same query (always so when N < M). This is eq. 3 as written.
    - Equal minima resolve to the lowest query index (``torch.argmin``).
    - ``max_cost`` (not in the paper) leaves GTs whose best cost is above it
      unmatched (-1); their queries are filtered unless another GT keeps
      them. A cost equal to ``max_cost`` still matches.
    - M = 0: empty outputs and every query is filtered. N = 0: every GT is
      unmatched with cost ``inf``.
    - Nothing here carries gradient (``torch.no_grad``); costs are computed in
      float32 or wider.

    This is not an mmdet ``BaseAssigner``: the result is per GT, a
    :class:`QFAResult`, not a per-query ``AssignResult``.

    Args:
        lambda_b (float): Weight of the GIoU loss in eq. 2. The paper does not
            state it, so it is an open parameter; 1.0 weighs the two terms
            equally. Defaults to 1.0.
        cls_mode (str): ``'sigmoid'`` or ``'softmax'``. Defaults to
            ``'sigmoid'``.
        max_cost (float, optional): GTs whose minimum cost exceeds it are
            unmatched. Defaults to None (every GT keeps its argmin).
        eps (float): Added to the sigmoid probability before the log in
            ``'sigmoid'`` mode (bounds the cost at ``-log(eps)``).
            Defaults to 1e-8.
    """

    def __init__(self,
                 lambda_b: float = 1.0,
                 cls_mode: str = 'sigmoid',
                 max_cost: Optional[float] = None,
                 eps: float = 1e-8) -> None:
        if cls_mode not in ('sigmoid', 'softmax'):
            raise ValueError(f"cls_mode must be 'sigmoid' or 'softmax', got "
                             f'{cls_mode!r}')
        self.lambda_b = float(lambda_b)
        self.cls_mode = cls_mode
        self.max_cost = max_cost
        self.eps = eps

    def get_cost(self, pred_instances: InstanceData,
                 gt_instances: InstanceData) -> Tensor:
        """Cost matrix S of eq. 2.

        Args:
            pred_instances (:obj:`InstanceData`): ``scores``: class logits
                (N, K); ``bboxes``: xyxy (N, 4).
            gt_instances (:obj:`InstanceData`): ``labels`` (M,) in [0, K) and
                ``bboxes`` xyxy (M, 4) in the predictions' coordinate frame.

        Returns:
            Tensor: (N, M) costs, float32 or wider.
        """
        logits = pred_instances.scores.detach()
        pred_boxes = pred_instances.bboxes.detach()
        labels = gt_instances.labels.to(logits.device).long()
        gt_boxes = gt_instances.bboxes.detach().to(pred_boxes.device)
        dtype = torch.promote_types(logits.dtype, torch.float32)
        logits, pred_boxes, gt_boxes = (logits.to(dtype), pred_boxes.to(dtype),
                                        gt_boxes.to(dtype))
        num_classes = logits.size(-1)
        if labels.numel() > 0 and (int(labels.min()) < 0
                                   or int(labels.max()) >= num_classes):
            raise ValueError(f'GT labels must be in [0, {num_classes}), got '
                             f'{labels.tolist()}')
        if self.cls_mode == 'sigmoid':
            cls_cost = -(logits.sigmoid() + self.eps).log()[:, labels]
        else:
            cls_cost = -F.log_softmax(logits, dim=-1)[:, labels]
        giou = bbox_overlaps(pred_boxes, gt_boxes, mode='giou')
        return cls_cost + self.lambda_b * (1 - giou)

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               img_meta: Optional[dict] = None,
               **kwargs) -> QFAResult:
        """Keep the lowest-cost query of each GT (eq. 3).

        Args:
            pred_instances (:obj:`InstanceData`): ``scores`` (N, K) class
                logits and ``bboxes`` (N, 4) xyxy.
            gt_instances (:obj:`InstanceData`): ``labels`` (M,) and
                ``bboxes`` (M, 4) xyxy, same coordinate frame.
            img_meta (dict, optional): Unused; accepted for the mmdet
                assigner call signature.

        Returns:
            :obj:`QFAResult`: ``matched_pred_inds`` (M,), ``costs`` (M,),
            ``filtered_pred_mask`` (N,) and ``cost_matrix`` (N, M).
        """
        device = pred_instances.bboxes.device
        num_preds, num_gts = len(pred_instances), len(gt_instances)
        if num_preds == 0 or num_gts == 0:
            dtype = torch.promote_types(pred_instances.scores.dtype,
                                        torch.float32)
            return QFAResult(
                matched_pred_inds=torch.full((num_gts, ),
                                             -1,
                                             dtype=torch.long,
                                             device=device),
                costs=torch.full((num_gts, ),
                                 float('inf'),
                                 dtype=dtype,
                                 device=device),
                filtered_pred_mask=torch.ones(
                    num_preds, dtype=torch.bool, device=device),
                cost_matrix=torch.zeros((num_preds, num_gts),
                                        dtype=dtype,
                                        device=device))
        cost = self.get_cost(pred_instances, gt_instances)
        # ``argmin`` documents first-index tie breaking; ``min`` does not.
        matched = cost.argmin(0)
        costs = cost.gather(0, matched[None]).squeeze(0)
        if self.max_cost is not None:
            matched = matched.masked_fill(costs > self.max_cost, -1)
        kept = torch.zeros(num_preds, dtype=torch.bool, device=device)
        kept[matched[matched >= 0]] = True
        return QFAResult(
            matched_pred_inds=matched,
            costs=costs,
            filtered_pred_mask=~kept,
            cost_matrix=cost)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(lambda_b={self.lambda_b}, '
                f'cls_mode={self.cls_mode!r}, max_cost={self.max_cost}, '
                f'eps={self.eps})')
