# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's offline teacher: a frozen online model + a trained aggregator.

papers/ookd_paper.md, Sec. 3.2 and Fig. 3c; IDOL_VITA_SPEC.md §2, §3.
"We first pass every single frame into the baseline online VIS model ... to
extract the per-frame instance query", aggregate them with VITA's object
token association into N offline queries ``f_off``, and train the
aggregation module "by passing the offline instance query through the
dynamic mask head and minimizing the loss to instance masks, bounding
boxes, and classes in (1). We only train the object encoder and decoder
with the frozen baseline online model." The offline instance embedding is
``f_off`` through the online model's contrastive embedding head.

Data flow (one place, top to bottom):

1. ``online`` (a trained :class:`~mmookd.models.vis.IDOL`, frozen, always
   in eval mode) runs on every frame: last-layer frame queries, the input
   reference of its last decoder layer, class logits and mask features.
2. ``aggregator`` (:class:`~mmookd.models.aggregators.VITAAggregator` or
   the :class:`~mmookd.models.aggregators.TokenAverageAggregator` ablation
   of Table 6) turns the clip's frame queries into offline queries and a
   per-frame association of every offline query with the frame queries.
3. Each offline query is decoded for every frame by the frozen heads of
   IDOL's *last* decoder layer, which is what ``f_off`` stands in for:

   * class: ``cls_branches[-1](f_off)``, one video-level prediction (the
     same for every frame: an offline query is one instance tube);
   * box in frame ``t``: ``sigmoid(reg_branches[-1](f_off) +
     inverse_sigmoid(ref_t))`` exactly as IDOL's last layer refines its
     input reference (spec §1.3), with ``ref_t`` = the association-weighted
     mean of frame ``t``'s last-layer *input* references (the boxes IDOL's
     last layer refines). So the box follows the instance through the clip
     while the residual is shared;
   * mask in frame ``t``: the frozen dynamic mask head with frame ``t``'s
     mask features, the controller applied to ``f_off`` and ``ref_t``'s
     centre as the origin of the relative coordinates (IDOL uses the input
     reference of the layer, spec §1.4);
   * embedding: ``embed_branch(f_off)`` (spec §1.5), one per query and
     clip.

   Gradients flow through these frozen heads into the aggregator only.
4. Training: video-level one-to-one matching (Hungarian on per-frame costs
   summed over the frames where an instance is present), then IDOL's loss
   terms (spec §1.9) with deep supervision over the decoder layers.
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet.models.mot import BaseMOTModel
from mmdet.models.task_modules.assigners import CrossEntropyLossCost, DiceCost
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample, TrackSampleList
from mmdet.structures.bbox import (
    bbox_cxcywh_to_xyxy,
    bbox_xyxy_to_cxcywh,
    get_box_tensor,
)
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ..trackers import filter_frame_detections

__all__ = ['OfflineTeacher', 'ClipTargets']

#: Hungarian costs of the video-level matching. Deformable DETR's focal /
#: L1 / GIoU costs with IDOL's configured SET_COST_* weights 2 / 5 / 2,
#: which equal its loss weights (spec §1.7, §1.9); IDOL's own one-to-many
#: assigner is not used: one offline query per instance tube.
DEFAULT_MATCH_COSTS = [
    dict(type='FocalLossCost', alpha=0.25, gamma=2.0, eps=1e-8, weight=2.0),
    dict(type='BBoxL1Cost', box_format='xywh', weight=5.0),
    dict(type='IoUCost', iou_mode='giou', weight=2.0),
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


@MODELS.register_module()
class OfflineTeacher(BaseMOTModel):
    """Offline teacher of OOKD: frozen IDOL + object-token aggregator.

    Args:
        online (dict): Config of the online model (``IDOL``). It is frozen:
            no parameter requires grad and it stays in eval mode (BN
            statistics, dropout) even after :meth:`train`.
        aggregator (dict): ``VITAAggregator`` (paper) or
            ``TokenAverageAggregator`` (Table 6 ablation) config.
        online_checkpoint (str, optional): Local path of the trained online
            model's checkpoint, loaded (strictly) at construction; a missing
            file raises :class:`FileNotFoundError`. None keeps the online
            model randomly initialised (tests), or is used when a full
            teacher checkpoint (which contains the online weights) is loaded
            afterwards, e.g. by the distiller.
        deep_supervision (bool): Losses on every decoder layer of the
            aggregator (``d{i}.`` prefixed). Defaults to True (spec §2.5).
        loss_assoc (dict, optional): Direct supervision of a learned
            per-frame association (``frame_assoc_log`` of the aggregator),
            our counterpart of VITA's similarity loss (spec §2.5, weight
            0.5): for every offline query matched to an instance and every
            frame, a cross-entropy over that frame's queries whose target
            is the frame query the frozen model's own Hungarian matching
            gives that instance (:meth:`gt_token_targets`). E.g.
            ``dict(type='CrossEntropyLoss', loss_weight=0.5)``. Defaults to
            None (association learnt through the box / mask losses only).
        train_cfg (dict, optional): ``num_frame_layers`` (the last ``n``
            online decoder layers whose queries are fed, each as an
            independent sample, VITA's LAST_LAYER_NUM, spec §2.3; default
            1), ``match_costs`` (mmdet match costs summed over the frames
            where an instance is present; mask costs such as ``DiceCost`` /
            ``CrossEntropyLossCost`` may be added, they decode masks of all
            queries; default :data:`DEFAULT_MATCH_COSTS`) and
            ``mask_on_absent_frames`` (also supervise a matched query's
            mask to be empty on frames where its instance is absent, as
            VITA's video masks do; default False: masks only where present).
        test_cfg (dict, optional): ``chunk_size`` (frames per online pass,
            default 18 as VITA), ``max_per_video`` (top-k (query, class)
            pairs, default 10; VITA uses 20 on OVIS) and ``offload_frames``
            (videos longer than this keep their per-frame tensors on the
            CPU, default 36).
        data_preprocessor (dict, optional): ``TrackDataPreprocessor``.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 online: ConfigType,
                 aggregator: ConfigType,
                 online_checkpoint: Optional[str] = None,
                 deep_supervision: bool = True,
                 loss_assoc: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        # deep copies: mmdet's DETR builders edit nested configs in place
        self.online = MODELS.build(copy.deepcopy(online))
        self.aggregator = MODELS.build(copy.deepcopy(aggregator))
        self.deep_supervision = deep_supervision
        self.loss_assoc = (
            MODELS.build(loss_assoc) if loss_assoc is not None else None)
        self.online_checkpoint = online_checkpoint
        if online_checkpoint is not None:
            self.load_online_checkpoint(online_checkpoint)
        self.freeze_online()
        self._check_sizes()

        self.train_cfg = dict(
            num_frame_layers=1,
            match_costs=copy.deepcopy(DEFAULT_MATCH_COSTS),
            mask_on_absent_frames=False)
        self.train_cfg.update(train_cfg or {})
        if self.train_cfg['num_frame_layers'] < 1:
            raise ValueError('train_cfg.num_frame_layers must be >= 1')
        self.match_costs = [
            TASK_UTILS.build(c) for c in self.train_cfg['match_costs']
        ]
        self.uses_mask_costs = any(
            self._is_mask_cost(c) for c in self.match_costs)
        self.test_cfg = dict(
            chunk_size=18, max_per_video=10, offload_frames=36)
        self.test_cfg.update(test_cfg or {})

    # ------------------------------------------------------------------
    # the frozen online model
    # ------------------------------------------------------------------
    @property
    def head(self):
        """The online model's class / box / embedding head."""
        return self.online.head

    @property
    def mask_head(self):
        """The online model's dynamic mask head."""
        return self.online.mask_head

    def load_online_checkpoint(self, path: str) -> None:
        """Load the trained online model (strict) from a local file."""
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'OfflineTeacher: online_checkpoint {path!r} not found. '
                'Train the online model first (e.g. tools/train.py '
                'configs/idol/...) and point online_checkpoint at its '
                'checkpoint, or set online_checkpoint=None when a full '
                'teacher checkpoint is loaded afterwards.')
        load_checkpoint(
            self.online,
            path,
            map_location='cpu',
            strict=True,
            logger='current')
        # Runner.init_weights() must not re-initialise the loaded weights.
        self.online._is_init = True

    def freeze_online(self) -> None:
        """No gradient into, and no statistics update of, the online model
        (spec §2.8: only the aggregation module is trained)."""
        self.online.eval()
        for param in self.online.parameters():
            param.requires_grad_(False)

    def train(self, mode: bool = True) -> 'OfflineTeacher':
        """Set the mode of the aggregator; the online model stays in eval
        mode (frozen BN statistics, no dropout)."""
        super().train(mode)
        self.online.eval()
        return self

    def _check_sizes(self) -> None:
        dims = getattr(self.aggregator, 'embed_dims', None)
        if dims is not None and dims != self.head.embed_dims:
            raise ValueError(
                f'aggregator.embed_dims ({dims}) must equal the online '
                f'model\'s query channels ({self.head.embed_dims})')
        fq = getattr(self.aggregator, 'num_frame_queries', None)
        num_queries = self.online.detector.num_queries
        if fq is not None and fq != num_queries:
            raise ValueError(
                f'aggregator.num_frame_queries ({fq}) must equal the online '
                f'model\'s num_queries ({num_queries}) (fq_pos slots)')

    # ------------------------------------------------------------------
    # network
    # ------------------------------------------------------------------
    def frame_pass(self, imgs: Tensor,
                   samples: Sequence[DetDataSample]) -> dict:
        """Frozen online model on independent frames (no grad).

        Returns:
            dict: :meth:`IDOL.forward_frames` outputs.
        """
        with torch.no_grad():
            return self.online.forward_frames(imgs, list(samples))

    def aggregate_clips(self,
                        inputs: Tensor,
                        clips: Sequence[Sequence[DetDataSample]],
                        num_frame_layers: int = 1,
                        last_layer_only: bool = False) -> dict:
        """Online frame pass + aggregation of a batch of clips.

        Args:
            inputs (Tensor): (B, T, C, H, W) frames.
            clips (Sequence[Sequence[DetDataSample]]): Per clip, its T frame
                samples (``gt_instances`` needed by token-average).
            num_frame_layers (int): Feed the queries of the last ``n``
                online decoder layers as ``n`` samples (batch ``n * B``,
                layer-major).
            last_layer_only (bool): Only the last aggregator layer.

        Returns:
            dict: ``frames`` (online outputs), ``agg`` (aggregator outputs,
            batch ``n * B``) and ``frame_refs`` ((n * B, T, fQ, r) input
            references of the online model's last decoder layer).
        """
        bs, t = inputs.shape[:2]
        samples = [s for clip in clips for s in clip]
        frames = self.frame_pass(inputs.flatten(0, 1), samples)
        hidden = frames['hidden_states']
        if num_frame_layers > hidden.size(0):
            raise ValueError(f'num_frame_layers={num_frame_layers} but the '
                             f'online model has {hidden.size(0)} layers')
        q, d = hidden.shape[-2:]
        frame_queries = hidden[-num_frame_layers:].reshape(-1, t, q, d)
        scores = frames['cls_scores'][-1].max(-1)[0].view(bs, t, q)
        refs = frames['references'][-2].reshape(bs, t, q, -1)
        token_targets = None
        if self.aggregator.needs_token_targets:
            token_targets = self.gt_token_targets(frames, clips)
            token_targets = token_targets.repeat(num_frame_layers, 1, 1)
        agg = self.aggregator(
            frame_queries,
            frame_scores=scores.repeat(num_frame_layers, 1, 1),
            token_targets=token_targets,
            last_layer_only=last_layer_only)
        return dict(
            frames=frames,
            agg=agg,
            frame_refs=refs.repeat(num_frame_layers, 1, 1, 1))

    def decode(self, queries: Tensor, frame_assoc: Tensor,
               frame_refs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Decode offline queries with the frozen last-layer heads.

        Args:
            queries (Tensor): (..., N, D) offline queries.
            frame_assoc (Tensor): (..., N, T, fQ) association weights.
            frame_refs (Tensor): (..., T, fQ, r) the online model's input
                references of its last decoder layer (normalised cxcywh,
                or xy when it has a single layer).

        Returns:
            tuple[Tensor]: class logits (..., N, K), per-frame references
            (..., T, N, r) and boxes (..., T, N, 4) normalised cxcywh.
        """
        cls_logits = self.head.cls_branches[-1](queries)
        refs = torch.einsum('...ntq,...tqr->...tnr', frame_assoc, frame_refs)
        delta = self.head.reg_branches[-1](queries).unsqueeze(-3)
        ref_logits = inverse_sigmoid(refs)
        if refs.size(-1) == 4:
            boxes = delta + ref_logits
        else:
            boxes = torch.cat([delta[..., :2] + ref_logits, delta[..., 2:]],
                              -1)
        return cls_logits, refs, boxes.sigmoid()

    def forward_masks(self, mask_feat: Tensor, queries: Tensor, refs: Tensor,
                      img_meta: dict) -> Tensor:
        """Frozen dynamic mask head on offline queries in one frame.

        Args:
            mask_feat (Tensor): (C, h, w) mask features of the frame.
            queries (Tensor): (n, D) offline queries.
            refs (Tensor): (n, r) their references in that frame.
            img_meta (dict): Frame meta (``img_shape``).

        Returns:
            Tensor: (n, H / 4, W / 4) mask logits of the padded input.
        """
        img_h, img_w = img_meta['img_shape'][:2]
        points = refs[:, :2] * refs.new_tensor([img_w, img_h])
        return self.mask_head.forward_masks(mask_feat, queries, points)

    @torch.no_grad()
    def forward_clip(self, imgs: Tensor,
                     frame_samples: Sequence[DetDataSample]) -> dict:
        """Offline knowledge of one clip for the distiller (OOKD Sec. 3.2).

        Frames are processed in time order (``frame_id``, stable) and the
        per-frame outputs returned in the input order. The aggregator runs
        in eval mode whatever the teacher's mode (deterministic knowledge).

        Args:
            imgs (Tensor): (T, C, H, W) preprocessed frames of one clip.
            frame_samples (Sequence[:obj:`DetDataSample`]): Their samples
                (``img_shape``, ``batch_input_shape``; with
                ``TokenAverageAggregator`` also ``gt_instances`` with
                ``instances_ids``).

        Returns:
            dict: ``embeds`` (Nq, C) offline instance embeddings (the
            online model's embedding head on ``f_off``); ``cls_scores``
            (T, Nq, K) class logits (video-level, identical over T);
            ``bbox_preds`` (T, Nq, 4) normalised cxcywh boxes of each
            frame's ``img_shape``; ``queries`` (Nq, D) ``f_off``.
            ``Nq`` = the aggregator's object queries, or, for token
            average, the clip's GT instances in sorted ``instances_ids``
            order.
        """
        if imgs.dim() != 4 or imgs.size(0) != len(frame_samples):
            raise ValueError('forward_clip takes (T, C, H, W) frames and T '
                             'frame samples')
        order = self._time_order(frame_samples)
        samples = [frame_samples[i] for i in order]
        was_training = self.aggregator.training
        self.aggregator.eval()
        try:
            res = self.aggregate_clips(
                imgs[order][None], [samples], last_layer_only=True)
        finally:
            self.aggregator.train(was_training)
        agg = res['agg']
        queries = agg['queries'][-1, 0]
        cls_logits, _, boxes = self.decode(queries, agg['frame_assoc'][-1, 0],
                                           res['frame_refs'][0])
        inverse = torch.argsort(torch.as_tensor(order))
        num_frames = imgs.size(0)
        return dict(
            embeds=self.head.forward_embed(queries),
            cls_scores=cls_logits[None].expand(num_frames, -1,
                                               -1).contiguous(),
            bbox_preds=boxes[inverse.to(boxes.device)],
            queries=queries)

    @staticmethod
    def _time_order(samples: Sequence[DetDataSample]) -> List[int]:
        ids = [s.metainfo.get('frame_id') for s in samples]
        if any(i is None for i in ids):
            return list(range(len(samples)))
        return sorted(range(len(samples)), key=lambda i: ids[i])

    # ------------------------------------------------------------------
    # targets and matching
    # ------------------------------------------------------------------
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

    def pair_cost(self,
                  cls_logits: Tensor,
                  boxes: Tensor,
                  labels: Tensor,
                  gt_bboxes: Tensor,
                  img_meta: dict,
                  mask_preds: Optional[Tensor] = None,
                  gt_masks: Optional[Tensor] = None) -> Tensor:
        """Matching cost (n, m) of predictions vs GT in one frame.

        Args:
            cls_logits (Tensor): (n, K) class logits.
            boxes (Tensor): (n, 4) normalised cxcywh boxes.
            labels (Tensor): (m, ) GT labels.
            gt_bboxes (Tensor): (m, 4) absolute xyxy GT boxes.
            img_meta (dict): Frame meta (``img_shape``).
            mask_preds, gt_masks (Tensor, optional): (n, h, w) logits and
                (m, h, w) targets, for mask costs.
        """
        img_h, img_w = img_meta['img_shape'][:2]
        factor = boxes.new_tensor([img_w, img_h, img_w, img_h])
        pred = InstanceData(
            scores=cls_logits.detach(),
            bboxes=bbox_cxcywh_to_xyxy(boxes.detach()) * factor)
        gt = InstanceData(labels=labels, bboxes=gt_bboxes)
        costs = self.match_costs
        if mask_preds is not None:
            pred.masks = mask_preds.detach()
            gt.masks = gt_masks
        else:  # frame-token matching: class and box costs only
            costs = [c for c in costs if not self._is_mask_cost(c)]
        cost = sum(c(pred, gt, img_meta=img_meta) for c in costs)
        return torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6)

    @staticmethod
    def _is_mask_cost(cost) -> bool:
        return isinstance(cost, (DiceCost, CrossEntropyLossCost)) or getattr(
            cost, 'binary_input', False)

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

        The cost of (query, instance) is the sum over the frames where the
        instance is present of the per-frame costs (``match_costs``): one
        query per instance tube, its boxes (and masks) judged in every
        frame the instance is in.

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
        for t, meta in enumerate(img_metas):
            present = targets.present[t]
            if not bool(present.any()):
                continue
            masks = mask_fn(t) if mask_fn is not None else (None, None)
            frame_cost = self.pair_cost(cls_logits, boxes[t], targets.labels,
                                        targets.bboxes[t], meta, *masks)
            cost = cost + frame_cost * present[None].to(frame_cost.dtype)
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

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> dict:
        """Losses of a batch of T-frame clips (OOKD Sec. 3.2, eq. 1
        without the embedding term; spec §1.9 terms and weights).

        Args:
            inputs (Tensor): (B, T, C, H, W) clips (e.g. ``ClipFrameSample``
                with 4 frames, OOKD Sec. 4.1).
            data_samples (list[:obj:`TrackDataSample`]): Per clip, T frames
                with ``gt_instances`` (``bboxes``, ``labels``, ``masks``,
                ``instances_ids``).

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, ``loss_iou``,
            ``loss_mask``, ``loss_dice`` for the last aggregator layer,
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
        assoc_targets = None
        if self.loss_assoc is not None:
            if 'frame_assoc_log' not in agg:
                raise ValueError(
                    f'loss_assoc needs an aggregator that learns the '
                    f'association; {type(self.aggregator).__name__} does '
                    'not return frame_assoc_log')
            assoc_targets = self.gt_token_targets(res['frames'], clips)
        num_layers = agg['queries'].size(0)
        layers = range(num_layers) if self.deep_supervision else [
            num_layers - 1
        ]
        losses = dict()
        for layer in layers:
            assoc_log = None
            if assoc_targets is not None:
                assoc_log = agg['frame_assoc_log'][layer]
            layer_losses = self.loss_by_layer(agg['queries'][layer],
                                              agg['frame_assoc'][layer],
                                              agg['query_mask'],
                                              res['frame_refs'], mask_feats,
                                              tubes, mask_targets, metas,
                                              assoc_log, assoc_targets)
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            losses.update({prefix + k: v for k, v in layer_losses.items()})
        return losses

    def loss_by_layer(
            self,
            queries: Tensor,
            frame_assoc: Tensor,
            query_mask: Tensor,
            frame_refs: Tensor,
            mask_feats: Tensor,
            tubes: List[ClipTargets],
            mask_targets: List[List[Tensor]],
            img_metas: List[List[dict]],
            assoc_log: Optional[Tensor] = None,
            assoc_targets: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """IDOL's loss terms for one aggregator layer.

        Class: sigmoid focal over all queries x classes with video-level
        one-hot targets of the matched queries, ``sum / #matched``. Box: L1
        + GIoU per (matched query, frame with the instance), ``sum /
        #pairs``. Mask: focal + dice per (matched query, frame with the
        instance; all frames with ``mask_on_absent_frames``), ``sum /
        #masks``. Loss modules and weights are the online model's (spec
        §1.9).

        Args:
            queries (Tensor): (B', N, D); ``B' = n * B``, sample ``b`` is
                clip ``b % B``.
            frame_assoc (Tensor): (B', N, T, fQ).
            query_mask (Tensor): (B', N) bool, queries that may match.
            frame_refs (Tensor): (B', T, fQ, r).
            mask_feats (Tensor): (B, T, C, h, w).
            tubes (list[:obj:`ClipTargets`]): Per clip.
            mask_targets (list[list[Tensor]]): Per clip and frame,
                (M_t, H / 4, W / 4).
            img_metas (list[list[dict]]): Per clip and frame.
            assoc_log (Tensor, optional): (B', N, T, fQ) log association,
                with ``loss_assoc``.
            assoc_targets (Tensor, optional): (B, T, fQ) instance index of
                every frame query (:meth:`gt_token_targets`).
        """
        head, mask_head = self.head, self.mask_head
        assoc_preds, assoc_labels = [], []
        num_clips = len(tubes)
        cls_logits, refs, boxes = self.decode(queries, frame_assoc, frame_refs)
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
            mask_fn = None
            if self.uses_mask_costs:
                mask_fn = self._all_masks_fn(queries[b], refs[b],
                                             mask_feats[c], mask_targets[c],
                                             gt, metas)
            rows, cols = self.match_clip(cls_logits[b], boxes[b], gt, metas,
                                         query_mask[b], mask_fn)
            cls_targets[b, rows, gt.labels[cols]] = 1
            num_matched += rows.numel()
            if assoc_log is not None:
                preds, labels = self.assoc_pairs(assoc_log[b, rows],
                                                 assoc_targets[c], cols)
                assoc_preds.append(preds)
                assoc_labels.append(labels)
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
                mask_preds.append(
                    self.forward_masks(mask_feats[c, t], queries[b, q_inds],
                                       refs[b, t, q_inds], meta))
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
        if assoc_log is not None:
            preds = torch.cat(assoc_preds) if assoc_preds else None
            if preds is None or preds.numel() == 0:
                losses['loss_assoc'] = assoc_log.sum() * 0
            else:
                labels = torch.cat(assoc_labels)
                losses['loss_assoc'] = self.loss_assoc(
                    preds, labels, avg_factor=float(labels.numel()))
        return losses

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

    def _all_masks_fn(self, queries: Tensor, refs: Tensor, mask_feats: Tensor,
                      mask_targets: List[Tensor], gt: ClipTargets,
                      metas: List[dict]) -> Callable:
        """Mask-cost inputs of frame ``t``: all queries' logits (no grad)
        and every tube's target (empty where absent)."""

        def fn(t: int) -> Tuple[Tensor, Tensor]:
            with torch.no_grad():
                preds = self.forward_masks(mask_feats[t], queries, refs[t],
                                           metas[t])
            targets = self._tube_masks(mask_targets[t], gt.rows[t],
                                       preds.shape[-2:])
            return preds, targets

        return fn

    # ------------------------------------------------------------------
    # offline inference
    # ------------------------------------------------------------------
    def predict(self,
                inputs: Tensor,
                data_samples: TrackSampleList,
                rescale: bool = True,
                **kwargs) -> TrackSampleList:
        """Offline inference on a whole video (spec §2.9).

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
    def decode_video(self, encoded: Dict[str, Tensor],
                     samples: Sequence[DetDataSample],
                     device: torch.device) -> List[InstanceData]:
        """Aggregate, pick the top-k predictions and decode their masks.

        Returns:
            list[:obj:`InstanceData`]: ``pred_track_instances`` per frame.
        """
        token_targets = None
        if 'track_ids' in encoded:
            ids = encoded['track_ids'].to(device)
            token_targets = torch.full_like(ids, -1)
            tracked = ids >= 0
            if bool(tracked.any()):
                token_targets[tracked] = torch.unique(
                    ids[tracked], return_inverse=True)[1]
            token_targets = token_targets[None]
        agg = self.aggregator(
            encoded['queries'][None].to(device),
            frame_scores=encoded['scores'][None].to(device),
            token_targets=token_targets,
            last_layer_only=True)
        queries = agg['queries'][-1, 0]
        cls_probs = self.head.cls_branches[-1](queries).sigmoid()
        cls_probs = cls_probs * agg['query_mask'][0, :, None]
        num_classes = cls_probs.size(1)
        valid = int(agg['query_mask'][0].sum()) * num_classes
        k = min(int(self.test_cfg['max_per_video']), valid)
        cls_scores, flat = cls_probs.flatten().topk(k)
        query_inds, labels = flat // num_classes, flat % num_classes
        uniq, inverse = torch.unique(query_inds, return_inverse=True)
        refs = torch.einsum('ntq,tqr->tnr', agg['frame_assoc'][-1, 0, uniq],
                            encoded['refs'].to(device))
        feats = queries[uniq]
        mask_thr = self.online.test_cfg['mask_thr']
        prob_sum = cls_scores.new_zeros(k)
        area = cls_scores.new_zeros(k)
        frame_rles = []
        for t, sample in enumerate(samples):
            meta = sample.metainfo
            logits = self.forward_masks(encoded['mask_feats'][t].to(device),
                                        feats, refs[t], meta)[inverse]
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

    def _forward(self,
                 inputs: Tensor,
                 data_samples: Optional[TrackSampleList] = None,
                 **kwargs) -> dict:
        """Raw outputs of (B, T, C, H, W) clips: ``queries`` (L, B, N, D),
        ``frame_assoc``, ``cls_scores`` (L, B, N, K), ``bbox_preds``
        (L, B, T, N, 4) and ``embeds`` (B, N, C) of the last layer."""
        if data_samples is None:
            raise ValueError('the frame metas are needed')
        clips = [[video[i] for i in range(len(video))]
                 for video in data_samples]
        res = self.aggregate_clips(inputs, clips)
        agg = res['agg']
        cls_logits, _, boxes = self.decode(agg['queries'], agg['frame_assoc'],
                                           res['frame_refs'][None])
        return dict(
            queries=agg['queries'],
            frame_assoc=agg['frame_assoc'],
            cls_scores=cls_logits,
            bbox_preds=boxes,
            embeds=self.head.forward_embed(agg['queries'][-1]))
