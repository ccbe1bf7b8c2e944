# Copyright (c) mmookd contributors. All rights reserved.
"""mmdet's Mask2Former-VIS as OOKD's offline teacher (issue #17).

A thin adapter: :class:`Mask2FormerVISTeacher` *is* mmdet's
:class:`~mmdet.models.vis.Mask2FormerVideo` (same parameters, same
checkpoint keys, same training and inference) plus the teacher interface
of the distiller, ``forward_clip`` (and ``video_knowledge`` for the
knowledge bank). Nothing of mmdet's model is copied: its backbone and
track head run unchanged; a forward hook on the track head's decoder
``post_norm`` reads the last decoder layer's query features.

What the interface gets from Mask2Former-VIS (an offline model: one query
is one instance tube over the whole clip):

* ``embeds`` (Nq, C): the last decoder layer's query features after the
  decoder's final norm (what its class and mask-embedding heads read), one
  per query and clip. C is the teacher's ``feat_channels``; a student of
  another width (or another feature space) learns a projection on its
  side (:class:`~mmookd.models.losses.ProjectedCosineKDLoss`, FitNets).
* ``cls_scores`` (T, Nq, K): Mask2Former classifies with a softmax over K
  classes + "no object"; the distiller's QFA reads sigmoid logits, so the
  class probabilities ``p`` are given as ``log(p / (1 - p))`` (sigmoid of
  them is exactly ``p``). Video-level: the same for every frame.
* ``bbox_preds`` (T, Nq, 4): Mask2Former predicts no box; each frame's box
  is the tight box of the query's mask (``mask logit > 0`` at the mask
  feature resolution, i.e. 1/4 of the input), clipped to the frame's
  ``img_shape`` and normalised to cxcywh. Where the mask is empty, a
  one-cell box at the query's most likely pixel.
* ``queries`` (Nq, C) (= ``embeds``) and ``presence`` (T, Nq): 1 where the
  query's mask in that frame is not empty.

Memory grows with the clip length (every frame attends to every other):
``video_knowledge`` (the knowledge bank) runs whole videos in one pass.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet.models.vis import Mask2FormerVideo
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.runner import load_checkpoint
from torch import Tensor

__all__ = ['Mask2FormerVISTeacher', 'masks_to_norm_cxcywh']


def masks_to_norm_cxcywh(mask_logits: Tensor, stride_hw: Sequence[float],
                         img_shape: Sequence[int]) -> Tensor:
    """Tight normalised cxcywh boxes of mask logits.

    Args:
        mask_logits (Tensor): (N, h, w) logits at a feature resolution.
        stride_hw (Sequence[float]): Input pixels per mask cell (y, x).
        img_shape (Sequence[int]): (H, W) of the frame (unpadded).

    Returns:
        Tensor: (N, 4) cxcywh in [0, 1] of ``img_shape``; an empty mask
        gives a one-cell box at its highest logit.
    """
    num, h, w = mask_logits.shape
    img_h, img_w = float(img_shape[0]), float(img_shape[1])
    sy, sx = float(stride_hw[0]), float(stride_hw[1])
    fg = mask_logits > 0
    empty = ~fg.flatten(1).any(1)
    if empty.any():
        peak = mask_logits[empty].flatten(1).argmax(1)
        one = torch.zeros_like(fg[empty]).flatten(1)
        one[torch.arange(len(peak)), peak] = True
        fg[empty] = one.view(-1, h, w)
    rows, cols = fg.any(2), fg.any(1)  # (N, h), (N, w)
    ys = torch.arange(h, device=mask_logits.device)
    xs = torch.arange(w, device=mask_logits.device)
    big = max(h, w) + 1
    y1 = torch.where(rows, ys, big).min(1).values.float() * sy
    y2 = (torch.where(rows, ys, -1).max(1).values.float() + 1) * sy
    x1 = torch.where(cols, xs, big).min(1).values.float() * sx
    x2 = (torch.where(cols, xs, -1).max(1).values.float() + 1) * sx
    x1, x2 = x1.clamp(0, img_w), x2.clamp(0, img_w)
    y1, y2 = y1.clamp(0, img_h), y2.clamp(0, img_h)
    # at least one input pixel wide / high, inside the frame
    eps_w, eps_h = 1.0 / img_w, 1.0 / img_h
    cx = ((x1 + x2) / 2 / img_w).clamp(eps_w, 1 - eps_w)
    cy = ((y1 + y2) / 2 / img_h).clamp(eps_h, 1 - eps_h)
    bw = ((x2 - x1) / img_w).clamp(min=eps_w)
    bh = ((y2 - y1) / img_h).clamp(min=eps_h)
    return torch.stack([cx, cy, bw, bh], -1).view(num, 4)


@MODELS.register_module()
class Mask2FormerVISTeacher(Mask2FormerVideo):
    """mmdet's Mask2Former-VIS with OOKD's teacher interface.

    Use it as ``model.teacher.config`` of :class:`OOKD` with the
    Mask2Former-VIS config the teacher was trained with, switching the
    type: ``teacher=dict(config='<mask2former config>',
    checkpoint='<its checkpoint>', cfg_options=dict(
    type='Mask2FormerVISTeacher'))``. Its checkpoints are mmdet's: the
    adapter adds no parameter.

    Args:
        online_checkpoint (str, optional): A trained Mask2Former-VIS
            checkpoint loaded (strictly) at construction, as
            :class:`OfflineTeacher` loads its online model; the distiller
            sets it to None when it loads ``teacher.checkpoint`` itself.
        logit_eps (float): Probabilities are clamped to ``[eps, 1 - eps]``
            before ``log(p / (1 - p))``. Defaults to 1e-6.
        **kwargs: :class:`~mmdet.models.vis.Mask2FormerVideo`'s arguments.
    """

    def __init__(self,
                 *args,
                 online_checkpoint: Optional[str] = None,
                 logit_eps: float = 1e-6,
                 **kwargs) -> None:
        # mmdet's heads read nested configs as attributes (``cfg.a.b``);
        # the distiller builds its teacher from a plain dict
        kwargs = {
            k: ConfigDict(v) if isinstance(v, dict) else v
            for k, v in kwargs.items()
        }
        super().__init__(*args, **kwargs)
        self.logit_eps = logit_eps
        self.online_checkpoint = online_checkpoint
        # the knowledge bank sets test_cfg['chunk_size']; Mask2Former-VIS
        # sees a whole video at once, so it is recorded, not used
        self.test_cfg = dict(chunk_size=None)
        if online_checkpoint is not None:
            load_checkpoint(
                self,
                online_checkpoint,
                map_location='cpu',
                strict=True,
                logger='current')

    #: what its knowledge-bank entries are (no embedding head here)
    knowledge_feature = ('Mask2Former-VIS last decoder layer query '
                         'features (no embedding head)')

    @property
    def aggregator(self):
        """The module whose decoder output is the offline query (the
        knowledge bank records its type as the feature it stores)."""
        return self.track_head

    def init_weights(self) -> None:
        """mmdet's initialisation, unless ``online_checkpoint`` was loaded
        (the Runner calls it after construction: keep the weights)."""
        if self.online_checkpoint is None:
            super().init_weights()

    @torch.no_grad()
    def _run_clip(self, imgs: Tensor,
                  samples: Sequence[DetDataSample]) -> Dict[str, Tensor]:
        """Backbone + track head on one clip in time order: last-layer
        class logits (Nq, K+1), mask logits (Nq, T, h, w), queries (Nq, C).
        """
        head = self.track_head
        captured: List[Tensor] = []
        hook = head.transformer_decoder.post_norm.register_forward_hook(
            lambda module, args, out: captured.append(out))
        was_training = self.training
        # eval: the track head takes the T frames as one video
        self.eval()
        try:
            feats = self.backbone(imgs)
            cls_list, mask_list = head(feats, samples)
        finally:
            hook.remove()
            self.train(was_training)
        return dict(
            cls=cls_list[-1][0],
            masks=mask_list[-1][0],
            queries=captured[-1][0])

    def _knowledge(self, imgs: Tensor,
                   samples: Sequence[DetDataSample]) -> Dict[str, Tensor]:
        out = self._run_clip(imgs, samples)
        probs = F.softmax(out['cls'].float(), dim=-1)[:, :-1]
        probs = probs.clamp(self.logit_eps, 1 - self.logit_eps)
        cls_logits = probs.log() - torch.log1p(-probs)  # (Nq, K)
        masks = out['masks']  # (Nq, T, h, w)
        pad_h, pad_w = samples[0].metainfo.get('batch_input_shape',
                                               imgs.shape[-2:])
        h, w = masks.shape[-2:]
        stride = (pad_h / h, pad_w / w)
        boxes, presence = [], []
        for t, sample in enumerate(samples):
            img_shape = sample.metainfo.get('img_shape', imgs.shape[-2:])
            boxes.append(
                masks_to_norm_cxcywh(masks[:, t].float(), stride, img_shape))
            presence.append((masks[:, t] > 0).flatten(1).any(1).float())
        return dict(
            embeds=out['queries'],
            queries=out['queries'],
            cls_scores=cls_logits,
            bbox_preds=torch.stack(boxes),
            presence=torch.stack(presence))

    @staticmethod
    def _time_order(samples: Sequence[DetDataSample]) -> List[int]:
        ids = [s.metainfo.get('frame_id') for s in samples]
        if any(i is None for i in ids):
            return list(range(len(samples)))
        return sorted(range(len(samples)), key=lambda i: (ids[i], i))

    @torch.no_grad()
    def forward_clip(self, imgs: Tensor,
                     frame_samples: Sequence[DetDataSample]) -> dict:
        """Offline knowledge of one clip for the distiller (the interface
        of :meth:`OfflineTeacher.forward_clip`).

        Args:
            imgs (Tensor): (T, C, H, W) preprocessed frames of one clip.
            frame_samples (Sequence[:obj:`DetDataSample`]): Their samples
                (``img_shape``, ``batch_input_shape``, ``frame_id``).

        Returns:
            dict: ``embeds`` (Nq, C), ``cls_scores`` (T, Nq, K) sigmoid
            logits of the softmax class probabilities (video-level),
            ``bbox_preds`` (T, Nq, 4) normalised cxcywh mask boxes,
            ``queries`` (Nq, C) and ``presence`` (T, Nq); per-frame outputs
            in the given frame order (frames run in time order).
        """
        if imgs.dim() != 4 or imgs.size(0) != len(frame_samples):
            raise ValueError('forward_clip takes (T, C, H, W) frames and T '
                             'frame samples')
        order = self._time_order(frame_samples)
        knowledge = self._knowledge(imgs[order],
                                    [frame_samples[i] for i in order])
        inverse = torch.argsort(torch.as_tensor(order)).to(imgs.device)
        num_frames = imgs.size(0)
        return dict(
            embeds=knowledge['embeds'],
            cls_scores=knowledge['cls_scores'][None].expand(
                num_frames, -1, -1).contiguous(),
            bbox_preds=knowledge['bbox_preds'][inverse],
            queries=knowledge['queries'],
            presence=knowledge['presence'][inverse])

    @torch.no_grad()
    def video_knowledge(self, frames: Tensor,
                        samples: Sequence[DetDataSample]) -> dict:
        """Offline knowledge of a whole video (time order) for the
        knowledge bank (:func:`mmookd.apis.build_knowledge_bank`):
        ``embeds`` (N, C), ``queries``, ``cls_scores`` (N, K) video-level
        logits, ``bbox_preds`` (T, N, 4) and ``presence`` (T, N). One pass
        over all frames (memory grows with the video length)."""
        return self._knowledge(frames, list(samples))
