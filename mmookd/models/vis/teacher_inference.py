# Copyright (c) mmookd contributors. All rights reserved.
"""Offline inference of the teacher (OOKD Sec. 3.2, VITA's inference):
whole videos, the online pass in chunks (bounded memory), the aggregator
once over all frames, the top-k (query, class) predictions decoded frame
by frame; and the whole-video knowledge of the knowledge bank."""
from typing import Dict, List, Sequence

import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample, TrackSampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.structures import InstanceData
from torch import Tensor

from ..trackers import filter_frame_detections

__all__ = ['TeacherInferenceMixin']


class TeacherInferenceMixin:
    """Offline inference of :class:`OfflineTeacher` (module docstring)."""

    def predict(self,
                inputs: Tensor,
                data_samples: TrackSampleList,
                rescale: bool = True,
                **kwargs) -> TrackSampleList:
        """Offline inference on a whole video (docs/hyperparameters.md §17).

        1. online pass in chunks of ``chunk_size`` frames, keeping only the
           last-layer frame queries, their input references and max class
           logits, and the mask features (on the CPU for videos longer than
           ``offload_frames``) (:meth:`encode_video`);
        2. the aggregator once over all frames (shifted windows);
        3. top-k (``max_per_video``) over (query x class) sigmoid scores;
        4. masks decoded frame by frame and RLE-encoded at the original size
           at once (:meth:`IDOL.encode_masks`);
        5. score = class probability x mean mask probability inside the
           binary mask, over all frames at input resolution (VITA).

        Args:
            inputs (Tensor): (1, T, C, H, W) frames of one video.
            data_samples (list[:obj:`TrackDataSample`]): One video.
            rescale (bool): Unused; masks are always at the original size.

        Returns:
            list[:obj:`TrackDataSample`]: The input sample whose frames hold
            ``pred_track_instances`` as :meth:`IDOL.predict` does (one
            ``instances_id`` per (query, class) prediction, its video-level
            ``scores`` / ``labels`` in every frame where its mask is not
            empty, ``bboxes`` xyxy and RLE ``masks`` at the original size).
        """
        if inputs.dim() != 5 or len(data_samples) != 1:
            raise ValueError('OfflineTeacher.predict takes one video as '
                             '(1, T, C, H, W)')
        video = data_samples[0]
        samples = [video[i] for i in range(len(video))]
        encoded = self.encode_video(inputs[0], samples)
        per_frame = self.decode_video(encoded, samples, inputs.device)
        for frame, instances in zip(samples, per_frame):
            frame.pred_track_instances = instances
        return [video]

    @torch.no_grad()
    def encode_video(self, frames: Tensor,
                     samples: Sequence[DetDataSample]) -> Dict[str, Tensor]:
        """Chunked online pass; keeps only what the offline decoding needs.

        Returns:
            dict: ``queries`` (T, fQ, D), ``refs`` (T, fQ, r), ``scores``
            (T, fQ) max class logits, ``mask_feats`` (T, C, h, w) and, for
            token average, ``track_ids`` (T, fQ) (-1 = none) from the
            online model's tracker.
        """
        num_frames = frames.size(0)
        chunk = max(int(self.test_cfg['chunk_size']), 1)
        store = (
            torch.device('cpu')
            if num_frames > self.test_cfg['offload_frames'] else frames.device)
        state = None
        if self.aggregator.needs_token_targets:
            state = self.online.init_stream_state()
        kept = dict(queries=[], refs=[], scores=[], mask_feats=[])
        if state is not None:
            kept['track_ids'] = []
        for start in range(0, num_frames, chunk):
            chunk_samples = samples[start:start + chunk]
            out = self.online.forward_frames(frames[start:start + chunk],
                                             chunk_samples)
            kept['queries'].append(out['hidden_states'][-1].to(store))
            kept['refs'].append(out['references'][-2].to(store))
            kept['scores'].append(out['cls_scores'][-1].max(-1)[0].to(store))
            kept['mask_feats'].append(out['mask_feats'].to(store))
            if state is not None:
                kept['track_ids'].append(
                    self.track_tokens(out, chunk_samples, state).to(store))
            del out
        return {k: torch.cat(v) for k, v in kept.items()}

    def track_tokens(self, frames: dict, samples: Sequence[DetDataSample],
                     state) -> Tensor:
        """Track ids of the frame queries from the online model's tracker
        (how token average associates tokens at inference).

        The same per-frame filtering, masks and tracker calls as
        :meth:`IDOL.predict_frame`.

        Returns:
            Tensor: (n, fQ) long track id per query, -1 = not output.
        """
        cfg = self.online.test_cfg
        cls_scores = frames['cls_scores'][-1]
        ids_out = torch.full(
            cls_scores.shape[:2],
            -1,
            dtype=torch.long,
            device=cls_scores.device)
        for j, sample in enumerate(samples):
            cls_probs = cls_scores[j].sigmoid()
            if cfg['filter_detections']:
                boxes = bbox_cxcywh_to_xyxy(frames['bbox_preds'][-1, j])
                inds, scores, labels = filter_frame_detections(
                    cls_probs, boxes, cfg['select_thr'], cfg['nms_iou_thr'])
            else:
                scores, labels = cls_probs.max(1)
                inds = torch.arange(scores.numel(), device=scores.device)
            mask_logits = self.online.forward_masks(frames, -1, j, inds,
                                                    sample.metainfo)
            embeds = frames['embeds'][j, inds]
            ids = state.tracker.track(state.frame_id, embeds, scores, labels,
                                      mask_logits.sigmoid(), cls_probs[inds])
            state.frame_id += 1
            kept = ids >= 0
            ids_out[j, inds[kept]] = ids[kept]
        return ids_out

    @torch.no_grad()
    def aggregate_video(self, encoded: Dict[str, Tensor],
                        device: torch.device) -> Dict[str, Tensor]:
        """The aggregator (last layer) over all frames of an encoded video
        (:meth:`encode_video`)."""
        token_targets = None
        if 'track_ids' in encoded:
            ids = encoded['track_ids'].to(device)
            token_targets = torch.full_like(ids, -1)
            tracked = ids >= 0
            if bool(tracked.any()):
                token_targets[tracked] = torch.unique(
                    ids[tracked], return_inverse=True)[1]
            token_targets = token_targets[None]
        return self.aggregator(
            encoded['queries'][None].to(device),
            frame_scores=encoded['scores'][None].to(device),
            token_targets=token_targets,
            last_layer_only=True)

    @torch.no_grad()
    def video_knowledge(self, frames: Tensor,
                        samples: Sequence[DetDataSample]) -> Dict[str, Tensor]:
        """Offline knowledge of a whole video (OOKD Sec. 3.2: "from the
        whole set of video frames"), for the knowledge bank.

        The online pass runs in chunks (:meth:`encode_video`, bounded
        memory), the aggregator once over all frames.

        Args:
            frames (Tensor): (T, C, H, W) preprocessed frames, time order.
            samples (Sequence[:obj:`DetDataSample`]): Their samples.

        Returns:
            dict: ``embeds`` (N, C) offline embeddings (the frozen
            embedding head on ``f_off``), ``queries`` (N, D),
            ``cls_scores`` (N, K) video-level logits, ``bbox_preds``
            (T, N, 4) normalised cxcywh boxes and ``presence`` (T, N).
        """
        was_training = self.aggregator.training
        self.aggregator.eval()
        try:
            encoded = self.encode_video(frames, samples)
            device = frames.device
            agg = self.aggregate_video(encoded, device)
        finally:
            self.aggregator.train(was_training)
        queries = agg['queries'][-1, 0]
        cls_logits, _, boxes = self.decode(queries, agg['frame_assoc'][-1, 0],
                                           encoded['refs'].to(device),
                                           self.frame_wise(agg, -1, 0))
        return dict(
            embeds=self.head.forward_embed(queries),
            queries=queries,
            cls_scores=cls_logits,
            bbox_preds=boxes,
            presence=self._presence(agg, boxes)[-1, 0].t())

    @torch.no_grad()
    def decode_video(self, encoded: Dict[str, Tensor],
                     samples: Sequence[DetDataSample],
                     device: torch.device) -> List[InstanceData]:
        """Aggregate, pick the top-k predictions and decode their masks.

        Returns:
            list[:obj:`InstanceData`]: ``pred_track_instances`` per frame.
        """
        agg = self.aggregate_video(encoded, device)
        queries = agg['queries'][-1, 0]
        cls_probs = self.head.cls_branches[-1](queries).sigmoid()
        cls_probs = cls_probs * agg['query_mask'][0, :, None]
        num_classes = cls_probs.size(1)
        valid = int(agg['query_mask'][0].sum()) * num_classes
        k = min(int(self.test_cfg['max_per_video']), valid)
        cls_scores, flat = cls_probs.flatten().topk(k)
        query_inds, labels = flat // num_classes, flat % num_classes
        uniq, inverse = torch.unique(query_inds, return_inverse=True)
        assoc = agg['frame_assoc'][-1, 0, uniq]
        assoc = assoc / assoc.sum(-1, keepdim=True).clamp(min=1e-30)
        refs = torch.einsum('ntq,tqr->tnr', assoc, encoded['refs'].to(device))
        presence = self._presence(agg, queries)[-1, 0, uniq]  # (n, T)
        feats = queries[uniq]
        per_frame = self.frame_wise(agg, -1, 0)
        if per_frame is not None:
            per_frame = per_frame[uniq]  # (n, T, D)
        mask_thr = self.online.test_cfg['mask_thr']
        prob_sum = cls_scores.new_zeros(k)
        area = cls_scores.new_zeros(k)
        frame_rles = []
        for t, sample in enumerate(samples):
            meta = sample.metainfo
            logits = self.forward_masks(encoded['mask_feats'][t].to(device),
                                        self.mask_queries(feats, per_frame, t),
                                        refs[t], meta, presence[:, t])[inverse]
            probs = self._input_size_probs(logits, meta)
            binary = probs > mask_thr
            prob_sum += (probs * binary).flatten(1).sum(1)
            area += binary.flatten(1).sum(1)
            frame_rles.append(self.online.encode_masks(logits, meta))
        scores = cls_scores * prob_sum / area.clamp(min=1)
        return [
            self._frame_instances(rles, scores, labels) for rles in frame_rles
        ]

    @staticmethod
    def _input_size_probs(mask_logits: Tensor, img_meta: dict) -> Tensor:
        """Stride-4 logits -> probabilities at the (un-padded) input size."""
        if mask_logits.size(0) == 0:
            return mask_logits
        pad_h, pad_w = img_meta['batch_input_shape']
        img_h, img_w = img_meta['img_shape'][:2]
        up = F.interpolate(
            mask_logits[None], (pad_h, pad_w),
            mode='bilinear',
            align_corners=False)[0, :, :img_h, :img_w]
        return up.sigmoid()

    @staticmethod
    def _frame_instances(rles: List[dict], scores: Tensor,
                         labels: Tensor) -> InstanceData:
        """One frame's predictions whose mask is not empty."""
        keep = [i for i, rle in enumerate(rles) if mask_util.area(rle) > 0]
        inst = InstanceData()
        inst.instances_id = torch.tensor(keep, dtype=torch.long)
        inst.labels = labels[keep].long().cpu() if keep else torch.zeros(
            0, dtype=torch.long)
        inst.scores = scores[keep].float().cpu() if keep else torch.zeros(0)
        if keep:
            boxes = mask_util.toBbox([rles[i] for i in keep]).reshape(-1, 4)
            boxes[:, 2:] += boxes[:, :2]
            inst.bboxes = torch.as_tensor(boxes, dtype=torch.float32)
        else:
            inst.bboxes = torch.zeros(0, 4)
        inst.masks = [rles[i] for i in keep]
        return inst
