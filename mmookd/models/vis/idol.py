# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL: the online video instance segmentation model of OOKD.

Wu et al., "In Defense of Online Models for Video Instance Segmentation",
ECCV 2022; docs/hyperparameters.md §2-11. In OOKD (OOKD paper, Sec. 3.1)
it is the student and, frozen, the teacher's frame encoder.

Composition, no new transformer code:

* ``detector``: mmdet's :class:`DeformableDETR` (backbone, neck, encoder,
  decoder, query embedding) whose ``bbox_head`` is an
  :class:`~mmookd.models.heads.IDOLHead` (class / box / embedding branches
  and their losses). Only its building blocks are called here, never its
  own ``loss`` / ``predict``.
* ``mask_head``: :class:`~mmookd.models.heads.IDOLMaskHead` on the
  encoder memory (§4).
* ``tracker`` + ``assembler``: the online memory-bank tracker and the
  video-level output assembly (§11), rebuilt for every video or
  stream (:class:`IDOLStreamState`).

Training (§6-9) sees key/reference pairs: both frames go through
the same network independently; detection and mask losses are computed on
the key frame for every decoder layer, the contrastive losses between key
anchors and reference queries on the last layer. Inference is frame by
frame (:meth:`IDOL.predict_frame`), with masks encoded to RLE at the
original video size as soon as they are produced.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F
from mmdet.models.mot import BaseMOTModel
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample, TrackSampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from ..trackers import filter_frame_detections

FrameOutputs = Dict[str, Any]


def upsample_crop_mask_logits(mask_logits: Tensor, img_meta: dict) -> Tensor:
    """Stride-4 mask logits ``(n, h, w)`` -> ``(1, n, img_h, img_w)``.

    Bilinear upsampling to the padded input (``batch_input_shape``), then a
    crop to the un-padded resized image (``img_shape``): the first steps of
    :meth:`IDOL.encode_masks` and of the fast path's
    :meth:`~mmookd.models.vis.idol_fast.IDOLFastPath.binary_masks`, which
    then go on to the original size (``ori_shape``) each in its own way.
    """
    pad_h, pad_w = img_meta['batch_input_shape']
    img_h, img_w = img_meta['img_shape'][:2]
    return F.interpolate(
        mask_logits[None],
        size=(pad_h, pad_w),
        mode='bilinear',
        align_corners=False)[:, :, :img_h, :img_w]


@dataclass
class IDOLStreamState:
    """Per-video state of online inference.

    Attributes:
        tracker: The memory-bank tracker of this video (§11).
        assembler: Collects per-frame RLE masks and class scores per track
            (:class:`~mmookd.models.trackers.VideoTrackAssembler`).
        frame_id (int): Index of the next frame.
        worker (PostprocessWorker, optional): The fast path's background
            post-processing (RLE encoding, assembly); None on the
            reference path.
    """
    tracker: Any
    assembler: Any
    frame_id: int = 0
    worker: Any = None

    def close(self) -> None:
        """Finish the queued post-processing and stop the worker."""
        if self.worker is not None:
            self.worker.close()


@MODELS.register_module()
class IDOL(BaseMOTModel):
    """IDOL video instance segmentation model (§2-11).

    Args:
        detector (dict): Config of mmdet's ``DeformableDETR`` with an
            ``IDOLHead`` as ``bbox_head`` (§2-3, §5, §7).
        mask_head (dict): Config of the ``IDOLMaskHead`` (§4).
        tracker (dict): Config of the online tracker (``IDOLTracker``;
            ``MinVISTracker`` works too with
            ``test_cfg.filter_detections=False``).
        assembler (dict): Config of the ``VideoTrackAssembler`` (noise
            filter, mean class score, multi-class output; §11).
        deep_supervision (bool): Detection and mask losses on every decoder
            layer (``d{i}.`` prefixed) and not only the last. Defaults to
            True (§9).
        test_cfg (dict): Per-frame inference settings (§11):
            ``filter_detections`` (score threshold + class-aware box NMS
            before the tracker; default True), ``select_thr`` (0.1),
            ``nms_iou_thr`` (0.9) and ``mask_thr`` (0.5, on the sigmoid of
            the upsampled logits); ``fast`` (False) selects the fast path
            (:mod:`mmookd.models.vis.idol_fast`: two host-device transfers
            per frame, post-processing on a background worker with at most
            ``max_pending`` (2) frames queued, same outputs) and
            ``max_candidates`` (None: every query) caps the queries it
            considers; ``compile`` (False) runs its network as one
            ``torch.compile`` graph per input size.
        data_preprocessor (dict, optional): ``TrackDataPreprocessor``
            config.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 detector: ConfigType,
                 mask_head: ConfigType,
                 tracker: ConfigType = dict(type='IDOLTracker'),
                 assembler: ConfigType = dict(type='VideoTrackAssembler'),
                 deep_supervision: bool = True,
                 test_cfg: OptConfigType = dict(
                     filter_detections=True,
                     select_thr=0.1,
                     nms_iou_thr=0.9,
                     mask_thr=0.5),
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        self.detector = MODELS.build(detector)
        assert not getattr(self.detector, 'as_two_stage', False), \
            'IDOL uses learned queries, not two-stage proposals'
        self.mask_head = MODELS.build(mask_head)
        self.tracker_cfg = tracker
        self.assembler_cfg = assembler
        self.deep_supervision = deep_supervision
        self.test_cfg = dict(
            filter_detections=True,
            select_thr=0.1,
            nms_iou_thr=0.9,
            mask_thr=0.5,
            fast=False,
            compile=False,
            max_candidates=None,
            max_pending=2)
        self.test_cfg.update(test_cfg or {})
        self._fast_path = None

    @property
    def head(self):
        """The :class:`IDOLHead` (the detector's ``bbox_head``)."""
        return self.detector.bbox_head

    # ------------------------------------------------------------------
    # network
    # ------------------------------------------------------------------
    def forward_frames(self, imgs: Tensor,
                       data_samples: Sequence[DetDataSample]) -> FrameOutputs:
        """Run the per-frame network on a batch of independent frames.

        Backbone -> neck -> deformable encoder -> decoder (§2-3),
        then the class / box heads of every decoder layer, the embedding of
        the last layer (§5) and the mask features (§4). No
        information flows between the frames of the batch.

        Args:
            imgs (Tensor): (B, C, H, W) normalised, padded frames.
            data_samples (Sequence[:obj:`DetDataSample`]): One per frame,
                with ``img_shape`` and ``batch_input_shape``.

        Returns:
            dict: ``hidden_states`` (L, B, Q, D); ``references``: list of
            L + 1 tensors, ``references[l]`` being the *input* reference of
            decoder layer ``l`` ((B, Q, 2) for l = 0, else (B, Q, 4),
            normalised); ``cls_scores`` (L, B, Q, K) logits; ``bbox_preds``
            (L, B, Q, 4) normalised cxcywh; ``embeds`` (B, Q, C) of the last
            layer; ``mask_feats`` (B, 8, H / 8, W / 8).
        """
        det = self.detector
        feats = det.extract_feat(imgs)
        encoder_inputs, decoder_inputs = det.pre_transformer(
            feats, list(data_samples))
        encoder_outputs = det.forward_encoder(**encoder_inputs)
        query_inputs, _ = det.pre_decoder(**encoder_outputs)
        decoder_inputs.update(query_inputs)
        decoder_outputs = det.forward_decoder(**decoder_inputs)
        hidden_states = decoder_outputs['hidden_states']
        references = decoder_outputs['references']
        cls_scores, bbox_preds = self.head(hidden_states, references)
        mask_feats = self.mask_head.forward_mask_feats(
            encoder_outputs['memory'], encoder_inputs['spatial_shapes'],
            encoder_inputs['level_start_index'])
        return dict(
            hidden_states=hidden_states,
            references=references,
            cls_scores=cls_scores,
            bbox_preds=bbox_preds,
            embeds=self.head.forward_embed(hidden_states[-1]),
            mask_feats=mask_feats)

    def forward_masks(self,
                      outputs: FrameOutputs,
                      layer: int,
                      img_idx: int,
                      query_inds: Tensor,
                      img_meta: dict,
                      all_query_params: bool = False) -> Tensor:
        """Mask logits (stride 4 of the padded input) of some queries.

        The relative coordinates use the input reference point of the
        decoder layer, scaled to pixels of the un-padded image (§4).
        With ``all_query_params`` (inference) the dynamic parameters of
        every query are computed in one matmul and then selected, so a
        query's mask does not depend on which others are kept (the fast
        path, which computes them for every query, is then bit-identical).

        Args:
            outputs (dict): Output of :meth:`forward_frames`.
            layer (int): Decoder layer (negative values count from the end).
            img_idx (int): Frame index in the batch.
            query_inds (Tensor): (n, ) query indices.
            img_meta (dict): Meta of the frame (``img_shape``).

        Returns:
            Tensor: (n, H / 4, W / 4) logits.
        """
        layer = layer % outputs['hidden_states'].size(0)
        img_h, img_w = img_meta['img_shape'][:2]
        ref = outputs['references'][layer][img_idx, query_inds, :2]
        ref = ref * ref.new_tensor([img_w, img_h])
        query_feats = outputs['hidden_states'][layer, img_idx, query_inds]
        mask_feat = outputs['mask_feats'][img_idx]
        if not all_query_params:
            return self.mask_head.forward_masks(mask_feat, query_feats, ref)
        params = self.mask_head.controller(
            outputs['hidden_states'][layer, img_idx])[query_inds]
        return self.mask_head.forward_masks(mask_feat, query_feats, ref,
                                            params)

    @staticmethod
    def split_outputs(outputs: FrameOutputs,
                      num: int) -> Tuple[FrameOutputs, FrameOutputs]:
        """Split the outputs of a batch into its first ``num`` frames and
        the rest (e.g. key and reference frames run in one batch)."""
        first, second = {}, {}
        for key, value in outputs.items():
            if key == 'references':
                first[key] = [r[:num] for r in value]
                second[key] = [r[num:] for r in value]
            elif key in ('hidden_states', 'cls_scores', 'bbox_preds'):
                first[key], second[key] = value[:, :num], value[:, num:]
            else:
                first[key], second[key] = value[:num], value[num:]
        return first, second

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> dict:
        """Losses of a batch of key/reference pairs (§6-9).

        Args:
            inputs (Tensor): (N, 2, C, H, W) key and reference frames.
            data_samples (list[:obj:`TrackDataSample`]): With per-frame
                ``gt_instances`` (``bboxes``, ``labels``, ``masks``,
                ``instances_ids``) and the key / reference frame indices.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou``,
            ``loss_mask``, ``loss_dice`` (last layer; ``d{i}.`` prefixed for
            the others), ``loss_reid`` and ``loss_reid_aux``.
        """
        assert inputs.dim() == 5 and inputs.size(1) == 2, \
            'IDOL trains on (N, 2, C, H, W) key/reference pairs'
        key_imgs, ref_imgs, key_samples, ref_samples = self.split_key_ref(
            inputs, data_samples)
        # Key and reference frames are independent images for the network
        # (§3, "frames"), so they share one batch.
        outputs = self.forward_frames(
            torch.cat([key_imgs, ref_imgs]), key_samples + ref_samples)
        key_out, ref_out = self.split_outputs(outputs, len(key_samples))
        return self.loss_by_outputs(key_out, ref_out, key_samples, ref_samples)

    def loss_by_outputs(self, key_out: FrameOutputs, ref_out: FrameOutputs,
                        key_samples: Sequence[DetDataSample],
                        ref_samples: Sequence[DetDataSample]) -> dict:
        """IDOL's loss L_IDOL (OOKD eq. 1) from the network outputs.

        Exposed so that OOKD's distiller can add its KD term to the same
        forward pass.
        """
        key_gts = [s.gt_instances for s in key_samples]
        key_metas = [s.metainfo for s in key_samples]
        device = key_out['mask_feats'].device
        mask_targets = [
            self.mask_head.get_mask_targets(gt.masks,
                                            meta['batch_input_shape'], device)
            for gt, meta in zip(key_gts, key_metas)
        ]
        num_layers = key_out['cls_scores'].size(0)
        layers = range(num_layers) if self.deep_supervision else [
            num_layers - 1
        ]
        losses = dict()
        for layer in layers:
            cls_scores = key_out['cls_scores'][layer]
            bbox_preds = key_out['bbox_preds'][layer]
            # 1. one-to-many assignment of this layer's predictions (§7)
            assign_results = self.head.assign(cls_scores, bbox_preds, key_gts,
                                              key_metas)
            num_pos = sum(int((r.gt_inds > 0).sum()) for r in assign_results)
            avg_factor = float(max(num_pos, 1))  # local N_pos (§9)
            # 2. class / L1 / GIoU over the positives
            loss_cls, loss_bbox, loss_iou = self.head.loss_det_single(
                cls_scores, bbox_preds, assign_results, key_gts, key_metas,
                avg_factor)
            # 3. masks of the positive queries only
            mask_preds, pos_targets = self.positive_masks(
                key_out, layer, assign_results, mask_targets, key_metas)
            loss_mask, loss_dice = self.mask_head.loss(mask_preds, pos_targets,
                                                       avg_factor)
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            losses.update({
                f'{prefix}loss_cls': loss_cls,
                f'{prefix}loss_bbox': loss_bbox,
                f'{prefix}loss_iou': loss_iou,
                f'{prefix}loss_mask': loss_mask,
                f'{prefix}loss_dice': loss_dice,
            })
        # 4. contrastive losses on the last layer: key anchors (the key
        # queries matched to each GT by the last layer's assignment, which
        # the loop above ended with) vs reference-frame queries (§8)
        last_layer_assign_results = assign_results
        losses.update(
            self.head.loss_embed(key_out['embeds'], ref_out['embeds'],
                                 ref_out['cls_scores'][-1],
                                 ref_out['bbox_preds'][-1],
                                 last_layer_assign_results, key_gts,
                                 [s.gt_instances for s in ref_samples],
                                 [s.metainfo for s in ref_samples]))
        return losses

    def positive_masks(self, outputs: FrameOutputs, layer: int,
                       assign_results: Sequence, mask_targets: List[Tensor],
                       img_metas: List[dict]) -> Tuple[Tensor, Tensor]:
        """Predicted and target masks of the positive queries of a layer.

        Returns:
            tuple[Tensor]: (n_pos, H / 4, W / 4) logits and targets.
        """
        preds, targets = [], []
        for i, (result, target, meta) in enumerate(
                zip(assign_results, mask_targets, img_metas)):
            pos = (result.gt_inds > 0).nonzero().squeeze(1)
            preds.append(self.forward_masks(outputs, layer, i, pos, meta))
            targets.append(target[result.gt_inds[pos] - 1])
        return torch.cat(preds), torch.cat(targets)

    @staticmethod
    def split_key_ref(
        inputs: Tensor, data_samples: TrackSampleList
    ) -> Tuple[Tensor, Tensor, List[DetDataSample], List[DetDataSample]]:
        """Key and reference frames and samples of a batch of pairs."""
        batch_inds = torch.arange(inputs.size(0), device=inputs.device)
        key_inds = [s.key_frames_inds[0] for s in data_samples]
        ref_inds = [s.ref_frames_inds[0] for s in data_samples]
        key_imgs = inputs[batch_inds, key_inds]
        ref_imgs = inputs[batch_inds, ref_inds]
        key_samples = [s.get_key_frames()[0] for s in data_samples]
        ref_samples = [s.get_ref_frames()[0] for s in data_samples]
        return key_imgs, ref_imgs, key_samples, ref_samples

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    @property
    def fast(self) -> bool:
        """Whether inference takes the fast path (``test_cfg.fast``)."""
        return bool(self.test_cfg.get('fast', False))

    def fast_path(self):
        """The :class:`~mmookd.models.vis.idol_fast.IDOLFastPath` of this
        model (built on first use)."""
        if self._fast_path is None:
            from .idol_fast import IDOLFastPath
            self._fast_path = IDOLFastPath(self)
        return self._fast_path

    def init_stream_state(self) -> IDOLStreamState:
        """A fresh tracker and assembler for a new video or stream (and the
        fast path's tensor tracker and background worker)."""
        tracker_cfg = dict(self.tracker_cfg)
        worker = None
        if self.fast:
            if tracker_cfg.get('type') not in ('IDOLTracker',
                                               'TensorIDOLTracker'):
                raise ValueError(
                    'test_cfg.fast=True needs the IDOLTracker, got '
                    f"{tracker_cfg.get('type')}")
            tracker_cfg['type'] = 'TensorIDOLTracker'
            from mmookd.utils.postprocess_worker import PostprocessWorker
            worker = PostprocessWorker(int(self.test_cfg['max_pending']))
        tracker = MODELS.build(tracker_cfg)
        tracker.reset()
        assembler = TASK_UTILS.build(self.assembler_cfg)
        assembler.reset()
        return IDOLStreamState(
            tracker=tracker, assembler=assembler, worker=worker)

    def predict(self,
                inputs: Tensor,
                data_samples: TrackSampleList,
                rescale: bool = True,
                **kwargs) -> TrackSampleList:
        """Online inference on a whole video, frame by frame (§11).

        Args:
            inputs (Tensor): (1, T, C, H, W) frames of one video.
            data_samples (list[:obj:`TrackDataSample`]): One video.
            rescale (bool): Unused; masks are always at the original size.

        Returns:
            list[:obj:`TrackDataSample`]: The input sample whose frames hold
            ``pred_track_instances`` (video-level scores / labels per track,
            masks as RLE dicts at the original size, ``instances_id``).
        """
        assert inputs.dim() == 5, 'inputs must be (N, T, C, H, W)'
        assert len(data_samples) == 1, 'IDOL predicts one video at a time'
        track_data_sample = data_samples[0]
        num_frames = len(track_data_sample)
        state = self.init_stream_state()
        if self.fast:
            futures = [
                self.predict_frame_async(inputs[:, frame_id],
                                         track_data_sample[frame_id], state)
                for frame_id in range(num_frames)
            ]
            for future in futures:
                future.result()
            state.close()
        else:
            for frame_id in range(num_frames):
                self.predict_frame(inputs[:, frame_id],
                                   track_data_sample[frame_id], state)
        per_frame = state.assembler.to_track_instances(num_frames)
        for frame_id in range(num_frames):
            track_data_sample[frame_id].pred_track_instances = \
                per_frame[frame_id]
        return [track_data_sample]

    @torch.no_grad()
    def predict_frame(self, frame: Tensor, data_sample: DetDataSample,
                      state: IDOLStreamState) -> InstanceData:
        """Process the next frame of a video or stream (§11).

        network -> per-frame filtering (score > 0.1 or top-1, class-aware
        box NMS 0.9) -> stride-4 masks of the kept queries -> tracker (mask
        NMS, bi-softmax matching, birth/death) -> masks of the output
        instances at the original size, RLE-encoded, added to the
        assembler. Nothing per-frame but the RLEs and class-score vectors
        is kept, so memory does not grow with the video's pixel count.

        Args:
            frame (Tensor): (1, C, H, W) or (C, H, W) preprocessed frame.
            data_sample (:obj:`DetDataSample`): Its meta (``img_shape``,
                ``batch_input_shape``, ``ori_shape``, ``scale_factor``).
            state (:obj:`IDOLStreamState`): From :meth:`init_stream_state`;
                updated in place.

        Returns:
            :obj:`InstanceData`: This frame's online output: ``instances_id``
            (track ids), ``scores`` and ``labels`` (per-frame max class
            probability and its class), ``bboxes`` (xyxy, original size)
            and ``masks`` (list of RLE dicts, original size).
        """
        if self.fast:
            return self.predict_frame_async(frame, data_sample,
                                            state).result().to_instance_data()
        if frame.dim() == 3:
            frame = frame[None]
        meta = data_sample.metainfo
        cfg = self.test_cfg
        outputs = self.forward_frames(frame, [data_sample])
        cls_probs = outputs['cls_scores'][-1, 0].sigmoid()
        bbox_preds = outputs['bbox_preds'][-1, 0]
        embeds = outputs['embeds'][0]
        if cfg['filter_detections']:
            inds, scores, labels = filter_frame_detections(
                cls_probs, bbox_cxcywh_to_xyxy(bbox_preds), cfg['select_thr'],
                cfg['nms_iou_thr'])
        else:
            scores, labels = cls_probs.max(1)
            inds = torch.arange(scores.numel(), device=scores.device)
        mask_logits = self.forward_masks(
            outputs, -1, 0, inds, meta, all_query_params=True)
        ids = state.tracker.track(state.frame_id, embeds[inds], scores, labels,
                                  mask_logits.sigmoid(), cls_probs[inds])
        out = (ids >= 0).nonzero().squeeze(1)
        rles = self.encode_masks(mask_logits[out], meta)
        state.assembler.add_frame(state.frame_id, ids[out],
                                  cls_probs[inds[out]], rles)
        state.frame_id += 1
        bboxes = self.head.boxes_to_xyxy(bbox_preds[inds[out]],
                                         meta['img_shape'])
        scale_factor = meta.get('scale_factor', (1.0, 1.0))
        bboxes = bboxes / bboxes.new_tensor(scale_factor).repeat(2)
        return InstanceData(
            instances_id=ids[out],
            scores=scores[out],
            labels=labels[out],
            bboxes=bboxes,
            masks=rles)

    def predict_frame_async(self, frame: Tensor, data_sample: DetDataSample,
                            state: IDOLStreamState):
        """Fast path: process the next frame, return a future of its
        :class:`~mmookd.models.vis.idol_fast.HostFrameOutput`.

        The tracker has decided when this returns (the next frame can be
        submitted); RLE encoding and assembly finish on the state's worker,
        in frame order.
        """
        if not self.fast:
            raise RuntimeError('predict_frame_async needs test_cfg.fast=True')
        if state.worker is None:
            raise RuntimeError('the stream state has no worker: make it with '
                               'init_stream_state() after enabling fast')
        return self.fast_path().step(frame, data_sample, state)

    def encode_masks(self, mask_logits: Tensor, img_meta: dict) -> List[dict]:
        """Stride-4 logits -> binary masks at the original size -> RLE.

        Bilinear upsampling to the padded input, crop to the un-padded
        resized image, nearest resize to the original video size, sigmoid
        > ``mask_thr`` (§11; thresholding commutes with the nearest
        resize, so it is done on the logits' sigmoid at the end).

        Returns:
            list[dict]: pycocotools RLEs (``counts`` bytes).
        """
        if mask_logits.size(0) == 0:
            return []
        ori_h, ori_w = img_meta['ori_shape'][:2]
        masks = upsample_crop_mask_logits(mask_logits, img_meta)
        masks = F.interpolate(masks, size=(ori_h, ori_w), mode='nearest')[0]
        binary = (masks.sigmoid() > self.test_cfg['mask_thr'])
        binary = binary.permute(1, 2, 0).to(torch.uint8).cpu().numpy()
        return mask_util.encode(np.asfortranarray(binary))

    def _forward(self,
                 inputs: Tensor,
                 data_samples: Optional[TrackSampleList] = None,
                 **kwargs) -> FrameOutputs:
        """Network outputs of every frame of (N, T, C, H, W) inputs, frames
        flattened in (n, t) order; see :meth:`forward_frames`."""
        assert data_samples is not None, 'the frame metas are needed'
        frames = inputs.flatten(0, 1)
        samples = [s for video in data_samples for s in video]
        return self.forward_frames(frames, samples)
