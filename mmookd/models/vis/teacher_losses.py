# Copyright (c) mmookd contributors. All rights reserved.
"""Training losses of the offline teacher (OOKD Sec. 3.2: "minimizing the
loss to instance masks, bounding boxes, and classes in (1)"; VITA's
criterion for what is video-level).

Per aggregator layer (deep supervision) and clip, after the video-level
Hungarian matching (:class:`~.teacher_matching.TeacherMatchingMixin`):

* class: sigmoid focal over all queries x classes, video-level one-hot
  targets of the matched queries, ``sum / #matched``;
* box: L1 + GIoU per (matched query, frame where its instance is present),
  ``sum / #pairs`` (there is no box where it is absent);
* mask: focal + dice per (matched query, frame) on *every* frame of the
  clip, the target empty where the instance is absent (VITA supervises
  the video mask), ``sum / #masks``; masks are gated by the query's
  presence in the frame (``VITAAggregator(absent_slot=True)``);
* ``loss_sim`` (VITA's ``loss_fg_sim``, weight 0.5): binary cross-entropy
  on the similarity logits between every two of the clip's matched
  embeddings, the frame tokens the frozen model matches to an instance
  and the offline queries matched to an instance, target "same
  instance", ``sum / #pairs``;
* ``loss_assoc`` (our earlier counterpart, optional): a cross-entropy over
  each frame's queries whose target is the frame query of the matched
  instance.

Loss modules and weights of class / box / mask are the frozen online
model's (docs/hyperparameters.md §9).
"""
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmdet.structures import TrackSampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from torch import Tensor

from .teacher_matching import ClipTargets

__all__ = ['TeacherLossMixin']


class TeacherLossMixin:
    """Losses of :class:`OfflineTeacher` (see the module docstring)."""

    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> dict:
        """Losses of a batch of T-frame clips.

        Args:
            inputs (Tensor): (B, T, C, H, W) clips (e.g. ``ClipFrameSample``
                with 4 frames, OOKD Sec. 4.1).
            data_samples (list[:obj:`TrackDataSample`]): Per clip, T frames
                with ``gt_instances`` (``bboxes``, ``labels``, ``masks``,
                ``instances_ids``).

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou``,
            ``loss_mask``, ``loss_dice`` (and ``loss_sim`` /
            ``loss_assoc`` when configured) for the last aggregator layer,
            ``d{i}.``-prefixed for the others.
        """
        if inputs.dim() != 5:
            raise ValueError('OfflineTeacher trains on (B, T, C, H, W) clips')
        bs, t = inputs.shape[:2]
        clips = [[video[i] for i in range(len(video))]
                 for video in data_samples]
        res = self.aggregate_clips(
            inputs, clips, num_frame_layers=self.train_cfg['num_frame_layers'])
        device = inputs.device
        tubes = [self.clip_targets(clip) for clip in clips]
        metas = [[s.metainfo for s in clip] for clip in clips]
        mask_targets = [[
            self.mask_head.get_mask_targets(s.gt_instances.masks,
                                            s.metainfo['batch_input_shape'],
                                            device) for s in clip
        ] for clip in clips]
        mask_feats = res['frames']['mask_feats'].view(
            bs, t, *res['frames']['mask_feats'].shape[1:])
        agg = res['agg']
        for name, key in (('loss_assoc', 'frame_assoc_log'), ('loss_sim',
                                                              'sim_frame')):
            if getattr(self, name) is not None and key not in agg:
                raise ValueError(
                    f'{name} needs an aggregator that learns the '
                    f'association; {type(self.aggregator).__name__} does '
                    f'not return {key}')
        token_targets = None
        if self.loss_assoc is not None or self.loss_sim is not None:
            token_targets = self.gt_token_targets(res['frames'], clips)
        num_layers = agg['queries'].size(0)
        layers = range(num_layers) if self.deep_supervision else [
            num_layers - 1
        ]
        losses = dict()
        for layer in layers:
            layer_out = {
                k: agg[k][layer]
                for k in ('queries', 'frame_assoc', 'frame_assoc_log',
                          'presence', 'sim_query', 'per_frame_queries')
                if k in agg
            }
            layer_out.update({
                k: agg[k]
                for k in ('query_mask', 'sim_frame', 'sim_slots') if k in agg
            })
            layer_losses = self.loss_by_layer(layer_out, res['frame_refs'],
                                              mask_feats, tubes, mask_targets,
                                              metas, token_targets)
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            losses.update({prefix + k: v for k, v in layer_losses.items()})
        return losses

    def loss_by_layer(
            self,
            layer: Dict[str, Tensor],
            frame_refs: Tensor,
            mask_feats: Tensor,
            tubes: List[ClipTargets],
            mask_targets: List[List[Tensor]],
            img_metas: List[List[dict]],
            token_targets: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The loss terms of one aggregator layer (module docstring).

        Args:
            layer (dict): The aggregator's outputs of this layer:
                ``queries`` (B', N, D), ``frame_assoc`` (B', N, T, fQ),
                ``query_mask`` (B', N), optionally ``presence``
                (B', N, T), ``frame_assoc_log``, ``sim_query`` (B', N, D),
                ``sim_frame`` (B', T, fQ', D) and ``sim_slots``. ``B' = n *
                B``, sample ``b`` is clip ``b % B``.
            frame_refs (Tensor): (B', T, fQ, r).
            mask_feats (Tensor): (B, T, C, h, w).
            tubes (list[:obj:`ClipTargets`]): Per clip.
            mask_targets (list[list[Tensor]]): Per clip and frame,
                (M_t, H / 4, W / 4).
            img_metas (list[list[dict]]): Per clip and frame.
            token_targets (Tensor, optional): (B, T, fQ) instance index of
                every frame query (:meth:`gt_token_targets`), for
                ``loss_sim`` / ``loss_assoc``.
        """
        head, mask_head = self.head, self.mask_head
        queries, query_mask = layer['queries'], layer['query_mask']
        presence = layer.get('presence')
        per_frame = layer.get('per_frame_queries')
        assoc_preds, assoc_labels = [], []
        sim_terms = []
        num_clips = len(tubes)
        cls_logits, refs, boxes = self.decode(queries, layer['frame_assoc'],
                                              frame_refs, per_frame)
        cls_targets = torch.zeros_like(cls_logits)
        box_preds, box_targets, factors = [], [], []
        mask_preds, mask_tgts = [], []
        num_matched = 0
        on_absent = self.train_cfg['mask_on_absent_frames']
        for b in range(queries.size(0)):
            c = b % num_clips
            gt, metas = tubes[c], img_metas[c]
            if gt.num == 0:
                continue
            pres_b = presence[b] if presence is not None else None
            mask_fn = None
            if self.uses_mask_costs:
                mask_fn = self._all_masks_fn(
                    queries[b], refs[b], mask_feats[c], mask_targets[c], gt,
                    metas, pres_b,
                    per_frame[b] if per_frame is not None else None)
            rows, cols = self.match_clip(cls_logits[b], boxes[b], gt, metas,
                                         query_mask[b], mask_fn)
            cls_targets[b, rows, gt.labels[cols]] = 1
            num_matched += rows.numel()
            if self.loss_assoc is not None:
                preds, labels = self.assoc_pairs(
                    layer['frame_assoc_log'][b, rows], token_targets[c], cols)
                assoc_preds.append(preds)
                assoc_labels.append(labels)
            if self.loss_sim is not None:
                sim_terms.append(
                    self.similarity_pairs(layer['sim_query'][b, rows], cols,
                                          layer['sim_frame'][b],
                                          layer['sim_slots'][b],
                                          token_targets[c]))
            for t, meta in enumerate(metas):
                present = gt.present[t, cols]
                img_h, img_w = meta['img_shape'][:2]
                factor = boxes.new_tensor([img_w, img_h, img_w, img_h])
                if bool(present.any()):
                    box_preds.append(boxes[b, t, rows[present]])
                    box_targets.append(gt.bboxes[t, cols[present]])
                    factors.append(factor.expand(int(present.sum()), 4))
                keep = torch.ones_like(present) if on_absent else present
                if not bool(keep.any()):
                    continue
                q_inds, g_inds = rows[keep], cols[keep]
                frame_queries = self.mask_queries(
                    queries[b],
                    per_frame[b] if per_frame is not None else None, t)
                mask_preds.append(
                    self.forward_masks(
                        mask_feats[c, t], frame_queries[q_inds],
                        refs[b, t, q_inds], meta,
                        pres_b[q_inds, t] if pres_b is not None else None))
                mask_tgts.append(
                    self._tube_masks(mask_targets[c][t], gt.rows[t, g_inds],
                                     mask_preds[-1].shape[-2:]))
        zero = boxes.sum() * 0
        weight = None
        if not bool(query_mask.all()):
            weight = query_mask.flatten().to(cls_logits.dtype)
        loss_cls = head.loss_cls(
            cls_logits.flatten(0, 1),
            cls_targets.flatten(0, 1),
            weight=weight,
            avg_factor=float(max(num_matched, 1)))
        if box_preds:
            box_preds = torch.cat(box_preds)
            box_targets = torch.cat(box_targets)
            factors = torch.cat(factors)
            num_boxes = float(box_preds.size(0))
            loss_bbox = head.loss_bbox(
                box_preds,
                bbox_xyxy_to_cxcywh(box_targets / factors),
                avg_factor=num_boxes)
            loss_iou = head.loss_iou(
                bbox_cxcywh_to_xyxy(box_preds) * factors,
                box_targets,
                avg_factor=num_boxes)
        else:
            loss_bbox = loss_iou = zero
        if mask_preds:
            preds = torch.cat(mask_preds)
            loss_mask, loss_dice = mask_head.loss(preds, torch.cat(mask_tgts),
                                                  float(preds.size(0)))
        else:
            loss_mask = loss_dice = zero
        losses = dict(
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_iou=loss_iou,
            loss_mask=loss_mask,
            loss_dice=loss_dice)
        if self.loss_assoc is not None:
            preds = torch.cat(assoc_preds) if assoc_preds else None
            if preds is None or preds.numel() == 0:
                losses['loss_assoc'] = layer['frame_assoc_log'].sum() * 0
            else:
                labels = torch.cat(assoc_labels)
                losses['loss_assoc'] = self.loss_assoc(
                    preds, labels, avg_factor=float(labels.numel()))
        if self.loss_sim is not None:
            losses['loss_sim'] = self.similarity_loss(sim_terms,
                                                      layer['sim_query'])
        return losses

    def similarity_pairs(self, query_embeds: Tensor, cols: Tensor,
                         frame_embeds: Tensor, slots: Tensor,
                         token_targets: Tensor) -> Tuple[Tensor, Tensor]:
        """Similarity logits and targets of one clip (VITA ``loss_fg_sim``).

        Args:
            query_embeds (Tensor): (R, D) projected matched offline queries.
            cols (Tensor): (R,) the instance matched to each.
            frame_embeds (Tensor): (T, fQ', D) projected frame tokens.
            slots (Tensor): (T, fQ') frame-query slot of each token.
            token_targets (Tensor): (T, fQ) instance of every frame query
                (-1 = none).

        Returns:
            tuple[Tensor]: (P, P) logits and (P, P) float targets over the
            P = R + (matched tokens) embeddings of the clip.
        """
        ids = token_targets.gather(1, slots.to(token_targets.device))
        matched = ids >= 0
        embeds = torch.cat([frame_embeds[matched], query_embeds])
        ids = torch.cat([ids[matched], cols.to(ids.device)])
        logits = self.aggregator.similarity(embeds, embeds)
        return logits, (ids[:, None] == ids[None]).to(logits.dtype)

    def similarity_loss(self, terms: List[Tuple[Tensor, Tensor]],
                        like: Tensor) -> Tensor:
        """``loss_sim``: mean BCE over the same-clip pairs of all clips."""
        terms = [(p, g) for p, g in terms if p.numel() > 0]
        if not terms:
            return like.sum() * 0
        preds = torch.cat([p.flatten() for p, _ in terms])
        targets = torch.cat([g.flatten() for _, g in terms])
        return self.loss_sim(
            preds[:, None], targets[:, None], avg_factor=float(preds.numel()))

    @staticmethod
    def assoc_pairs(assoc_log: Tensor, targets: Tensor,
                    cols: Tensor) -> Tuple[Tensor, Tensor]:
        """(prediction, label) pairs of the association loss of one clip.

        Args:
            assoc_log (Tensor): (R, T, fQ) log association of the matched
                offline queries.
            targets (Tensor): (T, fQ) instance index of every frame query
                (-1 = none).
            cols (Tensor): (R,) instance matched to each query.

        Returns:
            tuple[Tensor]: (P, fQ) log association rows and (P,) target
            slots, one per (matched query, frame where a frame query holds
            its instance); slots the aggregator dropped are left out.
        """
        hit = targets[None] == cols.to(targets.device)[:, None, None]
        has = hit.any(-1)  # (R, T)
        slots = hit.float().argmax(-1)
        preds, labels = assoc_log[has], slots[has]
        picked = preds.gather(1, labels[:, None]).squeeze(1)
        keep = torch.isfinite(picked)
        return preds[keep], labels[keep]

    @staticmethod
    def _tube_masks(frame_targets: Tensor, rows: Tensor,
                    size: Tuple[int, int]) -> Tensor:
        """Targets of instances in one frame; empty where ``rows < 0``."""
        out = frame_targets.new_zeros((rows.numel(), ) + tuple(size))
        has = rows >= 0
        if bool(has.any()):
            out[has] = frame_targets[rows[has]]
        return out

    def _all_masks_fn(self,
                      queries: Tensor,
                      refs: Tensor,
                      mask_feats: Tensor,
                      mask_targets: List[Tensor],
                      gt: ClipTargets,
                      metas: List[dict],
                      presence: Optional[Tensor] = None,
                      per_frame: Optional[Tensor] = None) -> Callable:
        """Mask-cost inputs of frame ``t``: all queries' (gated) logits (no
        grad) and every tube's target (empty where absent)."""

        def fn(t: int) -> Tuple[Tensor, Tensor]:
            with torch.no_grad():
                preds = self.forward_masks(
                    mask_feats[t], self.mask_queries(queries, per_frame,
                                                     t), refs[t], metas[t],
                    presence[:, t] if presence is not None else None)
            targets = self._tube_masks(mask_targets[t], gt.rows[t],
                                       preds.shape[-2:])
            return preds, targets

        return fn
