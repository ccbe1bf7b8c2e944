# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's per-query prediction head (docs/hyperparameters.md §3, §5, §7-9).

On top of mmdet's :class:`DeformableDETRHead` (per-layer class and box
branches with iterative box refinement, prior-0.01 class bias, zero-init box
output and ``bias[2:] = -2`` on the first layer, exactly §3) this
head adds IDOL's instance-embedding branch (§5) and IDOL's losses:

* detection (every decoder layer, key frame only): one-to-many dynamic-k
  assignment, sigmoid focal class loss over all queries, L1 and GIoU on the
  positive (query, GT) pairs, all ``sum / N_pos`` with ``N_pos`` the local
  positive count of the layer (§9);
* association (last layer): IDOL's multi-positive contrastive loss and its
  auxiliary cosine-L2 loss on key anchors vs. reference-frame queries picked
  by :class:`~mmookd.models.task_modules.ContrastiveSelector` (§8).

The model (:class:`~mmookd.models.vis.IDOL`) calls these per layer so that
the data flow of a training step stays readable in one place.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.dense_heads import DeformableDETRHead
from mmdet.models.layers.transformer import MLP
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import (
    bbox_cxcywh_to_xyxy,
    bbox_xyxy_to_cxcywh,
    get_box_tensor,
)
from mmdet.utils import ConfigType, InstanceList
from mmengine.structures import InstanceData
from torch import Tensor

from ..task_modules import contrastive_loss_inputs


@MODELS.register_module()
class IDOLHead(DeformableDETRHead):
    """Class, box and embedding branches of IDOL with its losses.

    Built by mmdet's ``DeformableDETR`` as its ``bbox_head``, which sets
    ``share_pred_layer``, ``num_pred_layer`` and ``as_two_stage`` and passes
    its ``train_cfg`` / ``test_cfg`` here.

    Args:
        num_embed_fcs (int): Linear layers of the embedding MLP.
            Defaults to 3 (256 -> 256 -> 256 -> 256, §5).
        embed_channels (int): Output channels of the embedding (raw, not
            normalised: dot products are used by the loss and the tracker).
            Defaults to 256.
        loss_cls (dict): Defaults to sigmoid focal (alpha 0.25, gamma 2),
            weight 2.
        loss_bbox (dict): L1 on normalised cxcywh. Defaults to weight 5.
        loss_iou (dict): GIoU loss. Defaults to weight 2.
        loss_reid (dict): Multi-positive contrastive loss (mean over items).
            Defaults to ``MultiPosCrossEntropyLoss`` with weight 2.
        loss_reid_aux (dict, optional): Auxiliary cosine-L2 loss. Defaults
            to ``CosineL2AuxLoss`` (10 negatives per positive), weight 3.
        train_cfg (dict): ``assigner`` (one-to-many key-frame assignment,
            §7) and ``contrast_selector`` (§8).
        **kwargs: Other :class:`DeformableDETRHead` arguments
            (``num_classes``, ``embed_dims``, ``num_reg_fcs``, ...).
    """

    def __init__(self,
                 *args,
                 num_embed_fcs: int = 3,
                 embed_channels: int = 256,
                 loss_cls: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=2.0),
                 loss_bbox: ConfigType = dict(type='L1Loss', loss_weight=5.0),
                 loss_iou: ConfigType = dict(type='GIoULoss', loss_weight=2.0),
                 loss_reid: ConfigType = dict(
                     type='MultiPosCrossEntropyLoss', loss_weight=2.0),
                 loss_reid_aux: Optional[ConfigType] = dict(
                     type='CosineL2AuxLoss', neg_pos_ratio=10,
                     loss_weight=3.0),
                 train_cfg: ConfigType = dict(
                     assigner=dict(type='DynamicKAssigner'),
                     contrast_selector=dict(type='ContrastiveSelector')),
                 **kwargs) -> None:
        self.num_embed_fcs = num_embed_fcs
        self.embed_channels = embed_channels
        super().__init__(
            *args,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_iou=loss_iou,
            train_cfg=train_cfg,
            **kwargs)
        assert self.loss_cls.use_sigmoid, \
            'IDOL classifies with sigmoid (no background logit)'
        self.loss_reid = MODELS.build(loss_reid)
        self.loss_reid_aux = MODELS.build(
            loss_reid_aux) if loss_reid_aux is not None else None
        self.contrast_selector = None
        if train_cfg and train_cfg.get('contrast_selector') is not None:
            self.contrast_selector = TASK_UTILS.build(
                train_cfg['contrast_selector'])

    def _init_layers(self) -> None:
        """Per-layer class/box branches (mmdet) + the embedding MLP."""
        super()._init_layers()
        self.embed_branch = MLP(self.embed_dims, self.embed_dims,
                                self.embed_channels, self.num_embed_fcs)

    # ------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------
    def forward_embed(self, query_feats: Tensor) -> Tensor:
        """Instance embeddings of the last decoder layer (§5).

        Args:
            query_feats (Tensor): (..., embed_dims) query features.

        Returns:
            Tensor: (..., embed_channels) raw embeddings.
        """
        return self.embed_branch(query_feats)

    @staticmethod
    def pred_instances(cls_scores: Tensor, bbox_preds: Tensor,
                       img_meta: dict) -> InstanceData:
        """Predictions of one image in the assigners' format.

        Args:
            cls_scores (Tensor): (Q, K) class logits.
            bbox_preds (Tensor): (Q, 4) normalised cxcywh boxes.
            img_meta (dict): With ``img_shape`` (h, w), the un-padded input
                size the boxes are normalised by.

        Returns:
            :obj:`InstanceData`: ``scores`` (logits) and ``bboxes``
            (absolute xyxy), detached.
        """
        img_h, img_w = img_meta['img_shape'][:2]
        factor = bbox_preds.new_tensor([img_w, img_h, img_w, img_h])
        bboxes = bbox_cxcywh_to_xyxy(bbox_preds.detach()) * factor
        return InstanceData(scores=cls_scores.detach(), bboxes=bboxes)

    # ------------------------------------------------------------------
    # detection losses (one decoder layer)
    # ------------------------------------------------------------------
    def assign(self, cls_scores: Tensor, bbox_preds: Tensor,
               batch_gt_instances: InstanceList,
               batch_img_metas: List[dict]) -> List[AssignResult]:
        """One-to-many assignment of one decoder layer (§7).

        Args:
            cls_scores (Tensor): (B, Q, K) class logits.
            bbox_preds (Tensor): (B, Q, 4) normalised cxcywh boxes.
            batch_gt_instances (list[:obj:`InstanceData`]): ``labels`` and
                ``bboxes`` (absolute xyxy) per image.
            batch_img_metas (list[dict]): Per image meta with ``img_shape``.

        Returns:
            list[:obj:`AssignResult`]: Per image; ``gt_inds`` 0 = background,
            ``j + 1`` = GT ``j``; extra property ``'matched_query_per_gt'``.
        """
        results = []
        for cls_score, bbox_pred, gt, meta in zip(cls_scores, bbox_preds,
                                                  batch_gt_instances,
                                                  batch_img_metas):
            gt = InstanceData(
                labels=gt.labels, bboxes=get_box_tensor(gt.bboxes).float())
            results.append(
                self.assigner.assign(
                    self.pred_instances(cls_score, bbox_pred, meta),
                    gt,
                    img_meta=meta))
        return results

    def loss_det_single(self, cls_scores: Tensor, bbox_preds: Tensor,
                        assign_results: Sequence[AssignResult],
                        batch_gt_instances: InstanceList,
                        batch_img_metas: List[dict],
                        avg_factor: float) -> Tuple[Tensor, Tensor, Tensor]:
        """Class, L1 and GIoU losses of one decoder layer (§9).

        Args:
            cls_scores (Tensor): (B, Q, K) class logits.
            bbox_preds (Tensor): (B, Q, 4) normalised cxcywh boxes.
            assign_results (Sequence[:obj:`AssignResult`]): Per image.
            batch_gt_instances (list[:obj:`InstanceData`]): Per image GT.
            batch_img_metas (list[dict]): Per image meta (``img_shape``).
            avg_factor (float): ``N_pos`` of this layer (local, >= 1).

        Returns:
            tuple[Tensor]: ``loss_cls`` (focal summed over all queries x
            classes), ``loss_bbox`` and ``loss_iou`` (over positive pairs),
            each ``sum / avg_factor`` times its weight.
        """
        cls_targets = torch.zeros_like(cls_scores)
        pos_preds, pos_targets, factors = [], [], []
        for i, (result, gt, meta) in enumerate(
                zip(assign_results, batch_gt_instances, batch_img_metas)):
            pos = (result.gt_inds > 0).nonzero().squeeze(1)
            pos_gt = result.gt_inds[pos] - 1
            cls_targets[i, pos, gt.labels[pos_gt].long()] = 1
            img_h, img_w = meta['img_shape'][:2]
            factor = bbox_preds.new_tensor([img_w, img_h, img_w, img_h])
            pos_preds.append(bbox_preds[i, pos])
            pos_targets.append(get_box_tensor(gt.bboxes)[pos_gt].float())
            factors.append(factor[None].expand(pos.numel(), 4))
        # One-hot targets select mmdet's pure-torch focal loss on any device.
        loss_cls = self.loss_cls(
            cls_scores.flatten(0, 1),
            cls_targets.flatten(0, 1),
            avg_factor=avg_factor)
        pos_preds = torch.cat(pos_preds)
        pos_targets = torch.cat(pos_targets)
        factors = torch.cat(factors)
        if pos_preds.numel() == 0:
            zero = bbox_preds.sum() * 0
            return loss_cls, zero, zero
        loss_bbox = self.loss_bbox(
            pos_preds,
            bbox_xyxy_to_cxcywh(pos_targets / factors),
            avg_factor=avg_factor)
        loss_iou = self.loss_iou(
            bbox_cxcywh_to_xyxy(pos_preds) * factors,
            pos_targets,
            avg_factor=avg_factor)
        return loss_cls, loss_bbox, loss_iou

    # ------------------------------------------------------------------
    # association losses (last decoder layer)
    # ------------------------------------------------------------------
    def loss_embed(self, key_embeds: Tensor, ref_embeds: Tensor,
                   ref_cls_scores: Tensor, ref_bbox_preds: Tensor,
                   key_assign_results: Sequence[AssignResult],
                   key_gt_instances: InstanceList,
                   ref_gt_instances: InstanceList,
                   ref_img_metas: List[dict]) -> Dict[str, Tensor]:
        """IDOL's contrastive losses of a batch of key/reference pairs.

        One item per key-frame instance that is also present in the
        reference frame (§6, §8): anchor = embedding of the key
        query matched to it (§7 step 5); positives / negatives =
        reference queries chosen by dynamic-k on the reference frame's
        last-layer predictions against the reference GT restricted to the
        instances present in the key frame.

        Args:
            key_embeds (Tensor): (B, Q, C) key-frame embeddings.
            ref_embeds (Tensor): (B, Q, C) reference-frame embeddings.
            ref_cls_scores (Tensor): (B, Q, K) reference last-layer logits.
            ref_bbox_preds (Tensor): (B, Q, 4) reference last-layer boxes
                (normalised cxcywh).
            key_assign_results (Sequence[:obj:`AssignResult`]): Last-layer
                key-frame assignment (with ``'matched_query_per_gt'``).
            key_gt_instances (list[:obj:`InstanceData`]): Key GT with
                ``instances_ids``.
            ref_gt_instances (list[:obj:`InstanceData`]): Reference GT with
                ``instances_ids``.
            ref_img_metas (list[dict]): Reference metas (``img_shape``).

        Returns:
            dict[str, Tensor]: ``loss_reid`` and (if configured)
            ``loss_reid_aux``; zero (but connected to the graph) when the
            batch has no item.
        """
        assert self.contrast_selector is not None, \
            'train_cfg.contrast_selector is needed for the embedding loss'
        items = []
        for i, (result, key_gt, ref_gt, meta) in enumerate(
                zip(key_assign_results, key_gt_instances, ref_gt_instances,
                    ref_img_metas)):
            # Instances absent from the key frame are dropped from the
            # reference targets too (§6).
            in_key = (ref_gt.instances_ids[:, None] == key_gt.instances_ids[
                None, :]).any(1)
            ref_gt = InstanceData(
                labels=ref_gt.labels[in_key],
                bboxes=get_box_tensor(ref_gt.bboxes)[in_key].float(),
                instances_ids=ref_gt.instances_ids[in_key])
            items.append(
                self.contrast_selector.select(
                    InstanceData(instances_ids=key_gt.instances_ids),
                    result.get_extra_property('matched_query_per_gt'),
                    self.pred_instances(ref_cls_scores[i], ref_bbox_preds[i],
                                        meta), ref_gt, meta))
        inputs = contrastive_loss_inputs(items, key_embeds, ref_embeds)
        zero = (key_embeds.sum() + ref_embeds.sum()) * 0
        losses = dict()
        if inputs['labels'].numel() == 0:
            losses['loss_reid'] = zero
        else:
            losses['loss_reid'] = self.loss_reid(inputs['logits'],
                                                 inputs['labels'])
        if self.loss_reid_aux is not None:
            if inputs['ref_labels'].numel() == 0:
                losses['loss_reid_aux'] = zero
            else:
                losses['loss_reid_aux'] = self.loss_reid_aux(
                    inputs['anchor_embeds'], inputs['ref_embeds'],
                    inputs['ref_labels'])
        return losses

    # ------------------------------------------------------------------
    # inference helpers
    # ------------------------------------------------------------------
    @staticmethod
    def boxes_to_xyxy(bbox_preds: Tensor, img_shape: Tuple[int,
                                                           int]) -> Tensor:
        """Normalised cxcywh -> absolute xyxy in the (resized) input."""
        img_h, img_w = img_shape[:2]
        factor = bbox_preds.new_tensor([img_w, img_h, img_w, img_h])
        return bbox_cxcywh_to_xyxy(bbox_preds) * factor

    def loss(self, *args, **kwargs):
        """Not used: IDOL's losses need key and reference frames and the
        dynamic mask head; see :meth:`mmookd.models.vis.IDOL.loss`."""
        raise NotImplementedError(
            'IDOLHead losses are driven by the IDOL model (loss_det_single, '
            'loss_embed)')

    def predict(self, *args, **kwargs):
        """Not used: IDOL predicts and tracks frame by frame, see
        :meth:`mmookd.models.vis.IDOL.predict_frame`."""
        raise NotImplementedError(
            'IDOLHead prediction is driven by the IDOL model')
