# Copyright (c) mmookd contributors. All rights reserved.
"""Token average: the parameter-free aggregation of OOKD's Table 6.

"The token average is a method that averages instance feature tokens
representing the same instance as a representative token of instance for
the entire video" (OOKD paper, Sec. 4.3, Table 6). ``f_off`` of
an instance is the mean of its frame tokens over the clip; which token of a
frame belongs to which instance is *given* (``token_targets``), because
the frame model has no notion of instance identity across frames:

* training / distillation (``OfflineTeacher.forward_clip``): each frame's
  queries are matched one-to-one to that frame's ground truth with the
  frozen model's predictions (Hungarian on the teacher's matching costs);
* offline inference (``OfflineTeacher.predict``): the frozen online
  model's own tracker gives each output query a track id.

``frame_readout=True`` (our design, as ``VITAAggregator(frame_readout=True)``,
docs/changes_from_papers.md): boxes and masks of frame ``t`` are decoded
from the instance's own token(s) of frame ``t`` instead of the clip mean;
the class and the distilled ``f_off`` stay the whole-clip mean. Where the
instance has no token in a frame its presence is 0 (its mask is empty
there) and the clip mean stands in.
"""
from typing import Dict, Optional

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

__all__ = ['TokenAverageAggregator']


@MODELS.register_module()
class TokenAverageAggregator(BaseModule):
    """``f_off`` of instance ``m`` = mean of the frame tokens assigned to it.

    The association returned for the frozen heads' references is the
    normalised one-hot of the assigned token(s) in each frame, and uniform
    over the frame's queries in frames without a token of the instance (a
    neutral reference; the instance has no target there).

    It has no parameters: an :class:`OfflineTeacher` built with it needs no
    training.

    Args:
        frame_readout (bool): Also return ``per_frame_queries``, each
            frame's own token(s) of the instance (module docstring).
            Defaults to False (OOKD Table 6: the mean decodes every frame).
        init_cfg (dict, optional): Initialization config.
    """

    #: The token-to-instance assignment must be given (see module doc).
    needs_token_targets = True
    num_queries = None  # one query per instance of the clip

    def __init__(self, frame_readout: bool = False, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.frame_readout = frame_readout

    def forward(self,
                frame_queries: Tensor,
                frame_scores: Optional[Tensor] = None,
                padding_mask: Optional[Tensor] = None,
                token_targets: Optional[Tensor] = None,
                last_layer_only: bool = False) -> Dict[str, Tensor]:
        """Average the frame tokens of every instance.

        Args:
            frame_queries (Tensor): (B, T, fQ, D) frame queries.
            frame_scores (Tensor, optional): Unused.
            padding_mask (Tensor, optional): (B, T) bool, True = padded
                frame (its tokens are ignored).
            token_targets (Tensor): (B, T, fQ) long, the instance index
                (0 .. M - 1) of every frame token, -1 = none.
            last_layer_only (bool): Unused (a single "layer").

        Returns:
            dict: ``queries`` (1, B, M, D) with ``M`` the largest instance
            count of the batch (zeros for missing instances);
            ``frame_assoc`` (1, B, M, T, fQ); ``presence`` (1, B, M, T),
            1 where the instance has a token in the frame, else 0 (its
            masks are empty there); ``query_mask`` (B, M) bool,
            True where the instance has at least one token; with
            ``frame_readout`` also ``per_frame_queries`` (1, B, M, T, D).
        """
        del frame_scores, last_layer_only
        if token_targets is None:
            raise ValueError(
                'TokenAverageAggregator needs token_targets: the instance '
                'index of every frame query (from the ground truth or a '
                'tracker)')
        bs, t, fq, d = frame_queries.shape
        targets = token_targets.long().clone()
        if padding_mask is not None:
            targets[padding_mask.bool()] = -1
        num = int(targets.max()) + 1 if targets.numel() else 0  # M
        # one-hot (B, T, fQ, M) of the assignment
        onehot = frame_queries.new_zeros((bs, t, fq, num + 1))
        onehot.scatter_(-1, (targets + 1).clamp(min=0)[..., None], 1.0)
        onehot = onehot[..., 1:]
        counts = onehot.sum((1, 2))  # (B, M)
        sums = torch.einsum('btqm,btqd->bmd', onehot, frame_queries)
        queries = sums / counts.clamp(min=1)[..., None]
        per_frame = onehot.permute(0, 3, 1, 2)  # (B, M, T, fQ)
        frame_counts = per_frame.sum(-1, keepdim=True)
        present = frame_counts > 0  # (B, M, T, 1)
        uniform = torch.full_like(per_frame, 1.0 / max(fq, 1))
        assoc = torch.where(present, per_frame / frame_counts.clamp(min=1),
                            uniform)
        out = dict(
            queries=queries[None],
            frame_assoc=assoc[None],
            presence=present[..., 0].to(queries.dtype)[None],
            query_mask=counts > 0)
        if self.frame_readout:
            own = torch.einsum('bmtq,btqd->bmtd', assoc, frame_queries)
            out['per_frame_queries'] = torch.where(present, own,
                                                   queries[:, :, None])[None]
        return out
