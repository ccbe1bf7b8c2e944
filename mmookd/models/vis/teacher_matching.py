# Copyright (c) mmookd contributors. All rights reserved.
"""Ground-truth tubes and matching of the offline teacher (OOKD Sec. 3.2,
trained as VITA: Hungarian matching of video queries to instance tubes).

Kept apart from the model (:mod:`.offline_teacher`) because the knowledge
bank (:mod:`mmookd.apis.knowledge_bank`) and the losses
(:mod:`.teacher_losses`) use the same tubes and costs.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import (
    BBoxL1Cost,
    CrossEntropyLossCost,
    DiceCost,
    IoUCost,
)
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, get_box_tensor
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ['ClipTargets', 'TeacherMatchingMixin', 'DEFAULT_MATCH_COSTS']

#: Hungarian costs of the video-level matching: Deformable DETR's focal / L1 /
#: GIoU costs with IDOL's SET_COST_* weights 2 / 5 / 2 (docs/hyperparameters.md
#: §7, §9), plus VITA's mask costs (sigmoid cross-entropy and dice, weights 5 /
#: 5, dice smoothed by 1 as VITA's ``batch_dice_loss``) judged on every frame
#: of the clip (:meth:`TeacherMatchingMixin.match_clip`).
DEFAULT_MATCH_COSTS = [
    dict(type='FocalLossCost', alpha=0.25, gamma=2.0, eps=1e-8, weight=2.0),
    dict(type='BBoxL1Cost', box_format='xywh', weight=5.0),
    dict(type='IoUCost', iou_mode='giou', weight=2.0),
    dict(type='CrossEntropyLossCost', use_sigmoid=True, weight=5.0),
    dict(type='DiceCost', pred_act=True, eps=1.0, weight=5.0),
]


@dataclass
class ClipTargets:
    """Ground truth of one clip as instance tubes.

    Attributes:
        instances_ids (Tensor): (M, ) sorted instance ids of the clip.
        labels (Tensor): (M, ) labels (of the first frame with the instance).
        bboxes (Tensor): (T, M, 4) absolute xyxy boxes; a dummy unit box
            where the instance is absent.
        present (Tensor): (T, M) bool.
        rows (Tensor): (T, M) row of the instance in that frame's
            ``gt_instances``, -1 where absent.
    """
    instances_ids: Tensor
    labels: Tensor
    bboxes: Tensor
    present: Tensor
    rows: Tensor

    @property
    def num(self) -> int:
        return int(self.instances_ids.numel())


class TeacherMatchingMixin:
    """Tubes, costs and Hungarian matching of :class:`OfflineTeacher`
    (needs ``match_costs`` and ``train_cfg`` on the model)."""

    @staticmethod
    def clip_targets(frame_samples: Sequence[DetDataSample]) -> ClipTargets:
        """Instance tubes of a clip from per-frame ``gt_instances``."""
        gts = [s.gt_instances for s in frame_samples]
        for gt in gts:
            if 'instances_ids' not in gt:
                raise KeyError('OfflineTeacher needs gt_instances.'
                               'instances_ids to build instance tubes')
        ids = torch.cat([gt.instances_ids.long() for gt in gts])
        uniq = ids.unique(sorted=True)
        t, m, device = len(gts), uniq.numel(), uniq.device
        labels = torch.full((m, ), -1, dtype=torch.long, device=device)
        bboxes = torch.tensor([0., 0., 1., 1.], device=device).repeat(t, m, 1)
        present = torch.zeros((t, m), dtype=torch.bool, device=device)
        rows = torch.full((t, m), -1, dtype=torch.long, device=device)
        for i, gt in enumerate(gts):
            if len(gt) == 0:
                continue
            col = torch.searchsorted(uniq, gt.instances_ids.long())
            present[i, col] = True
            rows[i, col] = torch.arange(len(gt), device=device)
            bboxes[i, col] = get_box_tensor(gt.bboxes).float().to(device)
            unset = labels[col] < 0
            labels[col[unset]] = gt.labels.long()[unset]
        return ClipTargets(uniq, labels, bboxes, present, rows)

    def pair_cost(
        self,
        cls_logits: Tensor,
        boxes: Tensor,
        labels: Tensor,
        gt_bboxes: Tensor,
        img_meta: dict,
        mask_preds: Optional[Tensor] = None,
        gt_masks: Optional[Tensor] = None,
        kinds: Sequence[str] = ('cls', 'box', 'mask')
    ) -> Tensor:
        """Matching cost (n, m) of predictions vs GT in one frame.

        Args:
            cls_logits (Tensor): (n, K) class logits.
            boxes (Tensor): (n, 4) normalised cxcywh boxes.
            labels (Tensor): (m, ) GT labels.
            gt_bboxes (Tensor): (m, 4) absolute xyxy GT boxes.
            img_meta (dict): Frame meta (``img_shape``).
            mask_preds, gt_masks (Tensor, optional): (n, h, w) logits and
                (m, h, w) targets, for mask costs.
            kinds (Sequence[str]): Which of the ``match_costs`` to sum:
                ``'cls'``, ``'box'`` and / or ``'mask'`` (:meth:`cost_kind`).
        """
        img_h, img_w = img_meta['img_shape'][:2]
        factor = boxes.new_tensor([img_w, img_h, img_w, img_h])
        pred = InstanceData(
            scores=cls_logits.detach(),
            bboxes=bbox_cxcywh_to_xyxy(boxes.detach()) * factor)
        gt = InstanceData(labels=labels, bboxes=gt_bboxes)
        if mask_preds is not None:
            pred.masks = mask_preds.detach()
            gt.masks = gt_masks
        else:  # frame-token matching: class and box costs only
            kinds = [k for k in kinds if k != 'mask']
        costs = [c for c in self.match_costs if self.cost_kind(c) in kinds]
        if not costs:
            return boxes.new_zeros((boxes.size(0), labels.numel()))
        cost = sum(c(pred, gt, img_meta=img_meta) for c in costs)
        return torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6)

    @staticmethod
    def cost_kind(cost) -> str:
        """``'mask'``, ``'box'`` or ``'cls'``: what a match cost judges."""
        if isinstance(cost, (DiceCost, CrossEntropyLossCost)) or getattr(
                cost, 'binary_input', False):
            return 'mask'
        if isinstance(cost, (BBoxL1Cost, IoUCost)):
            return 'box'
        return 'cls'

    @classmethod
    def _is_mask_cost(cls, cost) -> bool:
        return cls.cost_kind(cost) == 'mask'

    @staticmethod
    def hungarian(cost: Tensor) -> Tuple[Tensor, Tensor]:
        """One-to-one assignment: (rows, cols) long tensors."""
        rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
        return (torch.as_tensor(rows, dtype=torch.long, device=cost.device),
                torch.as_tensor(cols, dtype=torch.long, device=cost.device))

    def match_clip(
            self,
            cls_logits: Tensor,
            boxes: Tensor,
            targets: ClipTargets,
            img_metas: Sequence[dict],
            valid: Optional[Tensor] = None,
            mask_fn: Optional[Callable] = None) -> Tuple[Tensor, Tensor]:
        """Video-level Hungarian matching of offline queries to tubes.

        The cost of (query, instance) is a sum of per-frame costs
        (``match_costs``), one query per instance tube. As VITA's matcher
        judges a query's video mask against the instance's video mask
        (empty where the instance is absent), the class and mask costs are
        summed over *all* frames (mask target empty where absent); box
        costs only over the frames where the instance is present (no box
        there). With ``train_cfg.match_on_absent_frames=False`` every cost
        counts only where the instance is present (the old matching).

        Args:
            cls_logits (Tensor): (N, K) class logits.
            boxes (Tensor): (T, N, 4) normalised cxcywh boxes.
            targets (:obj:`ClipTargets`): The clip's instance tubes.
            img_metas (Sequence[dict]): Per-frame metas.
            valid (Tensor, optional): (N, ) bool, queries that may match.
            mask_fn (callable, optional): ``t -> (pred (N, h, w) logits,
                gt (M, h, w))`` for mask costs.

        Returns:
            tuple[Tensor]: Matched query indices and instance indices.
        """
        cost = cls_logits.new_zeros((cls_logits.size(0), targets.num))
        all_frames = self.train_cfg.get('match_on_absent_frames', True)
        for t, meta in enumerate(img_metas):
            present = targets.present[t]
            if not bool(present.any()) and not all_frames:
                continue
            weight = present[None].to(cost.dtype)
            masks = mask_fn(t) if mask_fn is not None else (None, None)
            args = (cls_logits, boxes[t], targets.labels, targets.bboxes[t],
                    meta) + tuple(masks)
            if bool(present.any()):
                cost = cost + self.pair_cost(*args, kinds=('box', )) * weight
            frame_cost = self.pair_cost(*args, kinds=('cls', 'mask'))
            cost = cost + (frame_cost if all_frames else frame_cost * weight)
        if valid is not None:
            cost[~valid] = 1e8
        return self.hungarian(cost)

    def gt_token_targets(self, frames: dict,
                         clips: Sequence[Sequence[DetDataSample]]) -> Tensor:
        """Frame-token -> GT-instance assignment for token average.

        Every frame's queries are matched one-to-one to the instances
        present in that frame by the frozen model's own last-layer
        predictions (Hungarian on ``match_costs``).

        Returns:
            Tensor: (B, T, fQ) long instance index (sorted
            ``instances_ids`` order of the clip), -1 = no instance.
        """
        cls_scores = frames['cls_scores'][-1]
        bbox_preds = frames['bbox_preds'][-1]
        bs, t = len(clips), len(clips[0])
        targets = torch.full((bs, t, cls_scores.size(1)),
                             -1,
                             dtype=torch.long,
                             device=cls_scores.device)
        for b, clip in enumerate(clips):
            tubes = self.clip_targets(clip)
            for i, sample in enumerate(clip):
                cols = tubes.present[i].nonzero().squeeze(1)
                if cols.numel() == 0:
                    continue
                k = b * t + i
                cost = self.pair_cost(cls_scores[k], bbox_preds[k],
                                      tubes.labels[cols],
                                      tubes.bboxes[i, cols], sample.metainfo)
                rows, matched = self.hungarian(cost)
                targets[b, i, rows] = cols[matched].to(targets.device)
        return targets
