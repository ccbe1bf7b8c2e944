# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's offline teacher: a frozen online model + a trained aggregator.

OOKD paper, Sec. 3.2 and Fig. 3c; docs/hyperparameters.md §12-17, §18.
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
     input reference (§3), with ``ref_t`` = the association-weighted
     mean of frame ``t``'s last-layer *input* references (the boxes IDOL's
     last layer refines). So the box follows the instance through the clip
     while the residual is shared;
   * mask in frame ``t``: the frozen dynamic mask head with frame ``t``'s
     mask features, the controller applied to ``f_off`` and ``ref_t``'s
     centre as the origin of the relative coordinates (IDOL uses the input
     reference of the layer, §4);
   * embedding: ``embed_branch(f_off)`` (§5), one per query and
     clip.

   Gradients flow through these frozen heads into the aggregator only.
   With ``VITAAggregator(absent_slot=True)`` the aggregator also says
   where a query is absent; its masks are gated by its presence
   (:func:`gate_mask_logits`) and its reference is the association over
   the frame tokens renormalised.
4. Training (:mod:`.teacher_matching`, :mod:`.teacher_losses`), as VITA:
   video-level one-to-one matching (Hungarian on class and mask costs over
   all frames, the mask target empty where an instance is absent, and box
   costs where it is present), then IDOL's loss terms (§9), masks
   on all frames, VITA's similarity loss, deep supervision over the
   decoder layers.
5. Offline inference and the whole-video knowledge of the knowledge bank:
   :mod:`.teacher_inference`.
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet.models.mot import BaseMOTModel
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample, TrackSampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.runner import load_checkpoint
from torch import Tensor

from .teacher_inference import TeacherInferenceMixin
from .teacher_losses import TeacherLossMixin
from .teacher_matching import (
    DEFAULT_MATCH_COSTS,
    ClipTargets,
    TeacherMatchingMixin,
)

__all__ = [
    'OfflineTeacher', 'ClipTargets', 'DEFAULT_MATCH_COSTS', 'gate_mask_logits'
]


def gate_mask_logits(logits: Tensor, presence: Tensor) -> Tensor:
    """Logits of ``presence * sigmoid(logits)``, in a stable form.

    The offline query's mask in a frame is its dynamic-mask-head mask times
    its presence there (``VITAAggregator(absent_slot=True)``): presence 0
    gives an empty mask whatever the head says.

    Args:
        logits (Tensor): (n, h, w) mask logits.
        presence (Tensor): (n, ) presence in [0, 1].
    """
    log_p = presence.clamp(min=1e-6).log()[:, None, None]
    log_q = (F.logsigmoid(logits) + log_p).clamp(max=-1e-7)
    return log_q - torch.log(-torch.expm1(log_q))


@MODELS.register_module()
class OfflineTeacher(TeacherMatchingMixin, TeacherLossMixin,
                     TeacherInferenceMixin, BaseMOTModel):
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
            aggregator (``d{i}.`` prefixed). Defaults to True (§14).
        loss_sim (dict, optional): VITA's similarity loss (``loss_fg_sim``,
            weight 0.5) on the aggregator's association embeddings:
            binary cross-entropy between every two matched embeddings of a
            clip (frame tokens the frozen model matches to an instance,
            offline queries matched to an instance), target "same
            instance" (:mod:`.teacher_losses`). E.g.
            ``dict(type='CrossEntropyLoss', use_sigmoid=True,
            loss_weight=0.5)``. Defaults to None.
        loss_assoc (dict, optional): Our earlier counterpart of it: for
            every offline query matched to an instance and every frame, a
            cross-entropy over that frame's queries whose target is the
            frame query the frozen model's own Hungarian matching gives
            that instance (:meth:`gt_token_targets`). E.g.
            ``dict(type='CrossEntropyLoss', loss_weight=0.5)``. Defaults to
            None.
        train_cfg (dict, optional): ``num_frame_layers`` (the last ``n``
            online decoder layers whose queries are fed, each as an
            independent sample, VITA's LAST_LAYER_NUM, §12; default
            1), ``match_costs`` (mmdet match costs; default
            :data:`DEFAULT_MATCH_COSTS`: class, box and VITA's mask
            costs), ``match_on_absent_frames`` (class and mask costs summed
            over all frames, the mask target empty where the instance is
            absent, as VITA's video-mask matching; default True; False:
            every cost only where the instance is present) and
            ``mask_on_absent_frames`` (supervise a matched query's mask on
            all frames, empty where its instance is absent, as VITA's
            video masks; default True; False: only where present).
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
                 loss_sim: OptConfigType = None,
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
        self.loss_sim = (
            MODELS.build(loss_sim) if loss_sim is not None else None)
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
            match_on_absent_frames=True,
            mask_on_absent_frames=True)
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
        (§16: only the aggregation module is trained)."""
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

    def decode(
        self,
        queries: Tensor,
        frame_assoc: Tensor,
        frame_refs: Tensor,
        per_frame_queries: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Decode offline queries with the frozen last-layer heads.

        Args:
            queries (Tensor): (..., N, D) offline queries.
            frame_assoc (Tensor): (..., N, T, fQ) association weights
                (renormalised over the frame queries: a query's reference
                in a frame where it is mostly "absent" is still a box).
            frame_refs (Tensor): (..., T, fQ, r) the online model's input
                references of its last decoder layer (normalised cxcywh,
                or xy when it has a single layer).
            per_frame_queries (Tensor, optional): (..., N, T, D) frame-wise
                queries (``VITAAggregator(frame_readout=True)``): the box
                residual of frame ``t`` is decoded from them.

        Returns:
            tuple[Tensor]: class logits (..., N, K), per-frame references
            (..., T, N, r) and boxes (..., T, N, 4) normalised cxcywh.
        """
        cls_logits = self.head.cls_branches[-1](queries)
        assoc = frame_assoc / frame_assoc.sum(
            -1, keepdim=True).clamp(min=1e-30)
        refs = torch.einsum('...ntq,...tqr->...tnr', assoc, frame_refs)
        if per_frame_queries is None:
            delta = self.head.reg_branches[-1](queries).unsqueeze(-3)
        else:
            delta = self.head.reg_branches[-1](per_frame_queries).movedim(
                -2, -3)
        ref_logits = inverse_sigmoid(refs)
        if refs.size(-1) == 4:
            boxes = delta + ref_logits
        else:
            boxes = torch.cat([delta[..., :2] + ref_logits, delta[..., 2:]],
                              -1)
        return cls_logits, refs, boxes.sigmoid()

    def forward_masks(self,
                      mask_feat: Tensor,
                      queries: Tensor,
                      refs: Tensor,
                      img_meta: dict,
                      presence: Optional[Tensor] = None) -> Tensor:
        """Frozen dynamic mask head on offline queries in one frame.

        Args:
            mask_feat (Tensor): (C, h, w) mask features of the frame.
            queries (Tensor): (n, D) offline queries.
            refs (Tensor): (n, r) their references in that frame.
            img_meta (dict): Frame meta (``img_shape``).
            presence (Tensor, optional): (n, ) the queries' presence in the
                frame; the masks are gated by it (:func:`gate_mask_logits`).

        Returns:
            Tensor: (n, H / 4, W / 4) mask logits of the padded input.
        """
        img_h, img_w = img_meta['img_shape'][:2]
        points = refs[:, :2] * refs.new_tensor([img_w, img_h])
        logits = self.mask_head.forward_masks(mask_feat, queries, points)
        if presence is not None and self.gates_masks:
            logits = gate_mask_logits(logits, presence)
        return logits

    @property
    def gates_masks(self) -> bool:
        """Whether the aggregator says where a query is absent (its masks
        are then gated by its presence)."""
        return bool(
            getattr(self.aggregator, 'absent_slot',
                    False)) or (not hasattr(self.aggregator, 'absent_slot'))

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
            frame's ``img_shape``; ``queries`` (Nq, D) ``f_off``;
            ``presence`` (T, Nq) of each query in each frame.
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
                                           res['frame_refs'][0],
                                           self.frame_wise(agg, -1, 0))
        inverse = torch.argsort(torch.as_tensor(order))
        num_frames = imgs.size(0)
        presence = self._presence(agg, boxes)[-1, 0].t()
        inverse = inverse.to(boxes.device)
        return dict(
            embeds=self.head.forward_embed(queries),
            cls_scores=cls_logits[None].expand(num_frames, -1,
                                               -1).contiguous(),
            bbox_preds=boxes[inverse],
            queries=queries,
            presence=presence[inverse])

    @staticmethod
    def frame_wise(agg: dict, *index) -> Optional[Tensor]:
        """``agg['per_frame_queries'][index]`` (frame-wise queries that
        decode boxes and masks), None where the aggregator has none."""
        per_frame = agg.get('per_frame_queries')
        return None if per_frame is None else per_frame[index]

    @staticmethod
    def mask_queries(queries: Tensor, per_frame: Optional[Tensor],
                     t: int) -> Tensor:
        """The (..., N, D) queries that decode frame ``t``'s masks: the
        frame-wise ones where the aggregator has them, else the clip's."""
        return queries if per_frame is None else per_frame[..., t, :]

    @staticmethod
    def _presence(agg: dict, like: Tensor) -> Tensor:
        """(L, B, N, T) presence (1 where the aggregator has none)."""
        if 'presence' in agg:
            return agg['presence']
        return agg['frame_assoc'].new_ones(agg['frame_assoc'].shape[:-1])

    @staticmethod
    def _time_order(samples: Sequence[DetDataSample]) -> List[int]:
        ids = [s.metainfo.get('frame_id') for s in samples]
        if any(i is None for i in ids):
            return list(range(len(samples)))
        return sorted(range(len(samples)), key=lambda i: ids[i])

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
                                           res['frame_refs'][None],
                                           agg.get('per_frame_queries'))
        return dict(
            queries=agg['queries'],
            frame_assoc=agg['frame_assoc'],
            cls_scores=cls_logits,
            bbox_preds=boxes,
            embeds=self.head.forward_embed(agg['queries'][-1]))
