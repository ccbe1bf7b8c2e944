# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's one-to-many dynamic-k ("simOTA-style") label assignment.

docs/hyperparameters.md §7. IDOL's class is called ``HungarianMatcher``
but it is not one-to-one: every ground truth (GT) takes its ``k`` cheapest
queries, ``k`` estimated from how well the predictions overlap that GT.
The same procedure (with different ``candidate_topk``) picks the contrastive
positives and negatives on the reference frame (section 1.8), so the pure
matching step is exposed as :func:`dynamic_k_matching`.
"""
from typing import List, Optional, Tuple, Union

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmengine import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

DEFAULT_MATCH_COSTS = [
    dict(type='FocalLossCost', alpha=0.25, gamma=2.0, eps=1e-8, weight=1.0),
    dict(type='IoUCost', iou_mode='giou', weight=3.0),
]


def dynamic_k_matching(cost: Tensor, ious: Tensor,
                       candidate_topk: int) -> Tensor:
    """Dynamic-k one-to-many matching on a cost matrix (§7 steps 3-4).

    1. ``k_j = max(1, int(sum of the top-candidate_topk IoUs of GT j))``;
       ``candidate_topk`` is clipped to the number of queries.
    2. GT ``j`` claims its ``k_j`` lowest-cost queries.
    3. A query claimed by several GTs keeps only its min-cost GT. As in
       official IDOL (and YOLOX / mmdet ``SimOTAAssigner``) the minimum is
       over *all* GTs, so the query may end on a GT that did not claim it.
    4. While some GT has no query and some query is unused, every such GT
       takes its cheapest unused query, and step 3 is applied again.

    Fallback-loop quirk of the official code, fixed here: official IDOL
    re-runs step 3 inside the loop with the per-query claim count computed
    *before* the loop. When two GTs left without queries pick the same
    unused query in the same round, that new double claim is never seen:
    the loop stops (both GTs "have" a query), the query is later given to
    the lower-index GT and the other GT silently ends with no positive
    query while its contrastive anchor points to a query trained on another
    object. We recompute the count every round, so the query goes to its
    min-cost GT and the other GT takes another query in the next round.

    Official IDOL adds 1e5 to the cost of used queries in the loop. With
    IDOL's costs (``|C| < 1.1e4``) this is the same as excluding them, which
    we do exactly, so the loop also terminates for arbitrary cost scales.

    A GT ends with no query only when there are fewer queries than GTs
    (``N < M``): each query serves one GT, so the loop stops once every
    query is used.

    Args:
        cost (Tensor): Cost matrix of shape (N, M), queries x GTs.
        ious (Tensor): IoU between predicted and GT boxes, shape (N, M).
        candidate_topk (int): Number of top IoUs summed to get ``k``.

    Returns:
        Tensor: Boolean matching matrix of shape (N, M); every row has at
        most one True.
    """
    num_queries, num_gts = cost.shape
    matching = torch.zeros_like(cost, dtype=torch.bool)
    if num_queries == 0 or num_gts == 0:
        return matching
    topk = min(candidate_topk, num_queries)
    topk_ious, _ = torch.topk(ious, topk, dim=0)
    dynamic_ks = topk_ious.sum(0).int().clamp(min=1).tolist()
    for gt_idx, k in enumerate(dynamic_ks):
        _, pos_idx = torch.topk(cost[:, gt_idx], k=k, largest=False)
        matching[pos_idx, gt_idx] = True
    _resolve_conflicts(matching, cost)

    while True:
        unmatched_gts = (~matching.any(0)).nonzero().squeeze(1)
        used = matching.any(1)
        if unmatched_gts.numel() == 0 or bool(used.all()):
            break
        free_cost = cost[:, unmatched_gts].masked_fill(used[:, None],
                                                       float('inf'))
        matching[free_cost.argmin(0), unmatched_gts] = True
        # The fix: the claim count is recomputed from the current matching.
        _resolve_conflicts(matching, cost)
    return matching


def _resolve_conflicts(matching: Tensor, cost: Tensor) -> None:
    """Give every query claimed by several GTs to its min-cost GT only."""
    multi = matching.sum(1) > 1
    if bool(multi.any()):
        best_gt = cost[multi].argmin(1)
        rows = torch.zeros_like(matching[multi])
        rows[torch.arange(rows.size(0), device=rows.device), best_gt] = True
        matching[multi] = rows


@TASK_UTILS.register_module()
class DynamicKAssigner(BaseAssigner):
    """IDOL's one-to-many dynamic-k assigner (docs/hyperparameters.md §7).

    Cost per (query, GT), with predicted box centres and the box geometry
    in coordinates normalised by the un-padded image size ``img_shape``::

        C = sum(match_costs)                        # focal cls + 3 * -GIoU
            + outside_cost * [not (in_box and in_center)]
            + non_candidate_cost * [query in no GT box or centre region]

    ``in_box``: predicted centre strictly inside the GT box; ``in_center``:
    predicted centre strictly within ``center_radius / expanded_stride``
    (2.5 / 32) of the GT centre on both axes. Then :func:`dynamic_k_matching`
    with ``candidate_topk``.

    Design: the appearance terms are ordinary mmdet match costs, so they can
    be swapped from a config as in ``HungarianAssigner``. The defaults,
    ``FocalLossCost(alpha=0.25, gamma=2, eps=1e-8, weight=1)`` and
    ``IoUCost('giou', weight=3)``, are exactly IDOL's hard-coded class and
    GIoU costs (IDOL ignores its ``SET_COST_*`` config keys). GIoU is
    invariant to per-axis scaling, so mmdet's absolute-xyxy ``IoUCost``
    equals IDOL's normalised one. The geometric prior (centre tests and
    their penalties) is IDOL-specific and not a per-pair cost of the mmdet
    kind (it also gates whole queries), so it is built in, with its
    constants as arguments.

    The result is one-to-many: ``gt_inds`` is 0 for background and
    ``j + 1`` for GT ``j``; ``labels`` is -1 for background;
    ``max_overlaps`` holds the IoU with the assigned GT (0 for background).
    The extra property ``'matched_query_per_gt'`` (M,) is, for each GT, its
    single lowest-cost assigned query (IDOL's contrastive anchor, §7
    step 5), or -1 if the GT got no query (only possible when N < M).
    Official IDOL picks it on the cost as modified by the fallback loop;
    we use the unmodified cost, which is what the spec describes.

    Args:
        match_costs (dict | list[dict], optional): mmdet match costs summed
            into the appearance cost. Defaults to IDOL's focal + GIoU.
        center_radius (float): Centre-region radius in strides. Defaults
            to 2.5.
        expanded_stride (float): Stride that normalises the radius.
            Defaults to 32 (radius 0.078125 of the image size).
        outside_cost (float): Penalty when the query centre is not both in
            the GT box and in its centre region. Defaults to 100.
        non_candidate_cost (float): Penalty for a query whose centre is in
            no GT box and no centre region. Defaults to 10000.
        candidate_topk (int): IoUs summed for the dynamic k. Defaults to 10.
    """

    def __init__(self,
                 match_costs: Optional[Union[List[Union[dict, ConfigDict]],
                                             dict, ConfigDict]] = None,
                 center_radius: float = 2.5,
                 expanded_stride: float = 32,
                 outside_cost: float = 100.0,
                 non_candidate_cost: float = 10000.0,
                 candidate_topk: int = 10) -> None:
        if match_costs is None:
            match_costs = DEFAULT_MATCH_COSTS
        if isinstance(match_costs, dict):
            match_costs = [match_costs]
        assert len(match_costs) > 0, 'match_costs must not be empty.'
        assert candidate_topk >= 1
        self.match_costs = [TASK_UTILS.build(c) for c in match_costs]
        self.center_radius = center_radius
        self.expanded_stride = expanded_stride
        self.outside_cost = outside_cost
        self.non_candidate_cost = non_candidate_cost
        self.candidate_topk = candidate_topk

    def get_cost(self, pred_instances: InstanceData,
                 gt_instances: InstanceData,
                 img_meta: dict) -> Tuple[Tensor, Tensor]:
        """Cost and IoU matrices (§7 steps 1-2), in fp32.

        Args:
            pred_instances (:obj:`InstanceData`): ``scores``: class logits
                (N, K); ``bboxes``: absolute xyxy (N, 4).
            gt_instances (:obj:`InstanceData`): ``labels`` (M,) and
                ``bboxes`` absolute xyxy (M, 4).
            img_meta (dict): Must contain ``img_shape`` (h, w), the
                un-padded image size the boxes are normalised by.

        Returns:
            tuple[Tensor, Tensor]: ``cost`` and ``ious``, both (N, M).
        """
        pred_boxes = pred_instances.bboxes.detach().float()
        gt_boxes = gt_instances.bboxes.detach().float()
        preds = InstanceData(
            scores=pred_instances.scores.detach().float(), bboxes=pred_boxes)
        gts = InstanceData(labels=gt_instances.labels, bboxes=gt_boxes)
        cost = torch.stack([
            match_cost(
                pred_instances=preds, gt_instances=gts, img_meta=img_meta)
            for match_cost in self.match_costs
        ]).sum(0)

        img_h, img_w = img_meta['img_shape'][:2]
        scale = pred_boxes.new_tensor([img_w, img_h, img_w, img_h])
        pred_boxes_n = pred_boxes / scale
        gt_boxes_n = gt_boxes / scale
        cx = ((pred_boxes_n[:, 0] + pred_boxes_n[:, 2]) / 2)[:, None]
        cy = ((pred_boxes_n[:, 1] + pred_boxes_n[:, 3]) / 2)[:, None]
        in_box = ((cx > gt_boxes_n[:, 0]) & (cx < gt_boxes_n[:, 2])
                  & (cy > gt_boxes_n[:, 1]) & (cy < gt_boxes_n[:, 3]))
        radius = self.center_radius / self.expanded_stride
        gt_cx = (gt_boxes_n[:, 0] + gt_boxes_n[:, 2]) / 2
        gt_cy = (gt_boxes_n[:, 1] + gt_boxes_n[:, 3]) / 2
        in_center = ((cx > gt_cx - radius) & (cx < gt_cx + radius)
                     & (cy > gt_cy - radius) & (cy < gt_cy + radius))
        candidate = (in_box | in_center).any(1)
        cost = cost + self.outside_cost * (~(in_box & in_center)).float()
        cost = cost + self.non_candidate_cost * (~candidate).float()[:, None]
        ious = bbox_overlaps(pred_boxes, gt_boxes, mode='iou')
        return cost, ious

    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               img_meta: Optional[dict] = None,
               candidate_topk: Optional[int] = None,
               **kwargs) -> AssignResult:
        """One-to-many assignment of queries to GTs (§7).

        Args:
            pred_instances (:obj:`InstanceData`): ``scores``: class logits
                (N, K); ``bboxes``: absolute xyxy (N, 4).
            gt_instances (:obj:`InstanceData`): ``labels`` (M,) and
                ``bboxes`` absolute xyxy (M, 4).
            img_meta (dict): Must contain ``img_shape`` (h, w).
            candidate_topk (int, optional): Overrides the constructor's
                value for this call (IDOL's contrastive selection uses 10
                and 100 on the same costs). Defaults to None.

        Returns:
            :obj:`AssignResult`: with the extra property
            ``'matched_query_per_gt'``.
        """
        assert img_meta is not None and 'img_shape' in img_meta
        topk = self.candidate_topk if candidate_topk is None \
            else candidate_topk
        num_gts, num_preds = len(gt_instances), len(pred_instances)
        device = pred_instances.bboxes.device
        gt_inds = torch.zeros(num_preds, dtype=torch.long, device=device)
        labels = torch.full((num_preds, ), -1, dtype=torch.long, device=device)
        max_overlaps = torch.zeros(num_preds, device=device)
        matched = torch.full((num_gts, ), -1, dtype=torch.long, device=device)
        if num_gts > 0 and num_preds > 0:
            with torch.no_grad():
                cost, ious = self.get_cost(pred_instances, gt_instances,
                                           img_meta)
                matching = dynamic_k_matching(cost, ious, topk)
            pos = matching.any(1)
            pos_gt = matching[pos].float().argmax(1)
            gt_inds[pos] = pos_gt + 1
            labels[pos] = gt_instances.labels[pos_gt].long()
            max_overlaps[pos] = ious[pos, pos_gt]
            has_query = matching.any(0)
            masked = cost.masked_fill(~matching, float('inf'))
            matched[has_query] = masked[:, has_query].argmin(0)
        result = AssignResult(
            num_gts=num_gts,
            gt_inds=gt_inds,
            max_overlaps=max_overlaps,
            labels=labels)
        result.set_extra_property('matched_query_per_gt', matched)
        return result
